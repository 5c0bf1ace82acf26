"""The states of a session-protocol connection, in the order it passes through them."""

# Ordered so that "takes no more messages" is one comparison (state >=
# LEAVING) and "closing or closed" another (state >= CLOSING).
NEW = 0  # accepted, no hello or resume yet
HANDSHAKE = 1  # a hello or resume is being checked
OPEN = 2  # attached to a session: routed messages flow
LEAVING = 3  # said bye: its requests in flight are answered, then bye's reply
CLOSING = 4  # closed by us, flushing what is written
CLOSED = 5  # the transport is gone
