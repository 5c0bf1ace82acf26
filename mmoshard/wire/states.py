"""The states of a session-protocol connection, in the order it passes through them."""

# Ordered so that "closing or closed" is one comparison: state >= CLOSING.
NEW = 0  # accepted, no hello or resume yet
HANDSHAKE = 1  # a hello or resume is being checked
OPEN = 2  # attached to a session: routed messages flow
CLOSING = 3  # closed by us, flushing what is written
CLOSED = 4  # the transport is gone
