"""The MQTT and event contract of EMS, in one place: topics, payload structs and the shared
enumerations. The hub, the portal, ``device_sim`` and ``firmware_stub`` import it; nothing here
imports them. docs/mqtt.md describes it for meter makers, and a test holds the two together.

* ``topics``   - every topic and subscription filter, their builders and parsers
* ``enums``    - the shared enumerations (``MeterKind``, ``AlertKind``, ``AlertStatus``...), each
  one ``Literal`` and the tuple of its values
* ``payloads`` - the payload structs (``Reading``, ``LiveEvent``, ``AlertEvent``,
  ``DeviceEvent``, the commands)
* ``readings`` - the readings codec: limits, the hub's fast decoder, the meters' encoders
* ``codec``    - the wire form of the other payloads (status, commands, device, alert and live
  events)
* ``reasons``  - ``DecodeError``, the dead-letter reasons registry, ``truncate_payload``
* ``fields``   - value parsing shared by the codecs (timestamps, numbers, ids)
"""
