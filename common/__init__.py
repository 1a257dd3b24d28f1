"""Small pieces the hub, the portal, ``ems`` and the simulator share (no EMS domain logic):
the reconnect back-off and the environment-settings parser."""
