"""Devices (meters): CRUD, owner assignment, MQTT credentials, change events."""
