"""EMS hub: MQTT ingest, storage, hourly energy, alerts, device status."""
