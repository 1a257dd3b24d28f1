"""The MQTT and event contract of EMS, in one place: topics, payload structs and the shared
enumerations. The hub, the portal, ``device_sim`` and ``firmware_stub`` import it; nothing here
imports them. docs/mqtt.md describes it for meter makers, and a test holds the two together."""
