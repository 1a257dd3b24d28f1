"""How the portal's broker connections retry: one back-off, and the refusals not worth retrying.

Both connections (broker_link's admin connection, realtime.link's event subscription) reconnect
on their own after the broker restarts; the jitter keeps the replicas of a scaled-out portal
from all knocking at the same instant.
"""

from __future__ import annotations

import aiomqtt

from common.backoff import BackoffPolicy

# 0.2 s doubling to 10 s: a restarted broker is found again within a second, and a broker that
# stays down costs one attempt per 5-10 s per connection.
RECONNECT = BackoffPolicy(initial_s=0.2, maximum_s=10.0, factor=2.0, jitter=0.5)

_REFUSED_CODES = {4, 5, 134, 135}  # MQTT 3.1.1 / 5: bad user name or password, not authorised


def refused(exc: aiomqtt.MqttError) -> bool:
    """Did the broker refuse our credentials? They will not fix themselves: stop retrying."""
    rc = getattr(exc, "rc", None)
    return getattr(rc, "value", rc) in _REFUSED_CODES
