"""Reference meter firmware: register, seq, store-and-forward buffer, birth and last will, resend.

The core (``meter``, ``session``, ``schedule``, ``window``, ``buffer``, ``records``,
``storage``, ``clock``, ``transport``, ``wire``, ``model``) depends on nothing but the MQTT
contract (the ``contract`` package: topics, payload structs and their codecs, also the hub's
and the portal's), the shared back-off (``common.backoff``) and a small MQTT client
interface (``transport.MqttClient``). ``paho_client`` (a select() superloop, for a PC) and
``aio_client`` (asyncio, for the simulator) implement that interface; ``fake`` is an in-memory
broker for tests. README.md is written for someone porting the meter to a small device.
"""
