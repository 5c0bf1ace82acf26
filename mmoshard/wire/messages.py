"""The built-in message types of the session protocol and the error record roles return."""

from mmoshard.wire.errors import ErrorInfo, ProtocolError

HELLO = "hello"
WELCOME = "welcome"
PING = "ping"
PONG = "pong"
ERROR = "error"
RESUME = "resume"
RESUMED = "resumed"
BYE = "bye"
SHUTDOWN = "server.shutdown"
# An operator opened or closed a maintenance window (wire/broadcast.py).
MAINTENANCE_NOTICE = "server.maintenance"

BUILTIN_TYPES = frozenset(
    {HELLO, WELCOME, PING, PONG, ERROR, RESUME, RESUMED, BYE, SHUTDOWN, MAINTENANCE_NOTICE}
)

__all__ = ["ErrorInfo", "ProtocolError", "BUILTIN_TYPES"]
