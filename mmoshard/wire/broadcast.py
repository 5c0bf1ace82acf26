"""Messages every session node sends every live session at once (an operator's maintenance window), published on one volatile-store channel."""

import attrs
import msgpack

from mmoshard.wire.messages import MAINTENANCE_NOTICE

BROADCAST_CHANNEL = "session:broadcast"
# The types a broadcast may carry: a node drops any other.
BROADCAST_TYPES = frozenset({MAINTENANCE_NOTICE})


@attrs.frozen
class Broadcast:
    """One message for every live session of the shard: C{{t: type, **body}}."""

    type: str = attrs.field(validator=attrs.validators.in_(BROADCAST_TYPES))
    body: dict

    def encode(self):
        return msgpack.packb([self.type, self.body])

    @classmethod
    def decode(cls, raw):
        """@raise ValueError: not a broadcast this node sends (also TypeError)."""
        kind, body = msgpack.unpackb(raw, raw=False)
        if not isinstance(body, dict) or "t" in body:
            raise ValueError("malformed broadcast")
        return cls(kind, body)


def broadcast(volatile, message):
    """Send C{message} (a L{Broadcast}) to every session node; @return: a Deferred."""
    return volatile.publish(BROADCAST_CHANNEL, message.encode())


__all__ = ["Broadcast", "broadcast", "BROADCAST_CHANNEL", "BROADCAST_TYPES"]
