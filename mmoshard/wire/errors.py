"""The stable error codes of the session protocol and the exception handlers raise."""

import attrs

# Codes are part of the protocol: clients switch on them, so they never change
# meaning.  docs/protocol.md lists each; a test keeps the two in step.
BAD_FRAME = "protocol.bad_frame"
FRAME_TOO_LARGE = "protocol.frame_too_large"
TEXT_FRAME = "protocol.text_frame"
UNKNOWN_TYPE = "protocol.unknown_type"
BAD_REQUEST = "protocol.bad_request"
NOT_AUTHENTICATED = "protocol.not_authenticated"
RATE_LIMITED = "protocol.rate_limited"
SLOW_CONSUMER = "protocol.slow_consumer"
HELLO_TIMEOUT = "protocol.hello_timeout"
HEARTBEAT_TIMEOUT = "protocol.heartbeat_timeout"
INVALID_TOKEN = "auth.invalid_token"
REVOKED = "auth.revoked"
UPDATE_REQUIRED = "version.update_required"
SERVER_FULL = "server.full"
IP_LIMIT = "server.ip_limit"
UNAVAILABLE = "server.unavailable"
BUSY = "server.busy"
MAINTENANCE = "server.maintenance"  # sent by the version role's client gate
REPLACED = "session.replaced"
RESUME_FAILED = "session.resume_failed"
INTERNAL = "internal"

CODES = frozenset(
    {
        BAD_FRAME,
        FRAME_TOO_LARGE,
        TEXT_FRAME,
        UNKNOWN_TYPE,
        BAD_REQUEST,
        NOT_AUTHENTICATED,
        RATE_LIMITED,
        SLOW_CONSUMER,
        HELLO_TIMEOUT,
        HEARTBEAT_TIMEOUT,
        INVALID_TOKEN,
        REVOKED,
        UPDATE_REQUIRED,
        SERVER_FULL,
        IP_LIMIT,
        UNAVAILABLE,
        BUSY,
        MAINTENANCE,
        REPLACED,
        RESUME_FAILED,
        INTERNAL,
    }
)


# Seconds a client is told to wait (retry_after) when a store did not answer
# within its deadline: server.unavailable from any handler.
UNAVAILABLE_RETRY_AFTER = 5.0

# Seconds a client is told to wait when the node sheds a request
# ([session] max_pending requests already in flight): server.busy.
BUSY_RETRY_AFTER = 1.0


@attrs.frozen
class ErrorInfo:
    """Why a request or a session was refused: an error code, a message, an optional retry hint."""

    code: str
    message: str
    retry_after: float | None = None
    # A role's extra fields for the client, as (name, value) pairs (e.g.
    # instance.locked's reset_at); never code, message or retry_after.
    details: tuple = ()

    def toBody(self):
        body = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        for name, value in self.details:
            body.setdefault(name, value)
        return body


class ProtocolError(Exception):
    """
    Raised by a handler to answer its request with a typed error; the
    connection stays open and nothing is logged as a failure.
    """

    def __init__(self, code, message, retry_after=None, details=None):
        """@param details: a dict of extra fields the error reply carries (a role's own)."""
        super().__init__(f"{code}: {message}")
        self.info = ErrorInfo(code, message, retry_after, tuple(sorted((details or {}).items())))


# What a client is told when its login ends elsewhere, by the revocation's reason.
_REVOKED_MESSAGES = {
    "logout": "signed out",
    "refresh_reuse": "your login was revoked: a used refresh token came back",
    "password_change": "the password was changed; sign in again",
    "ban": "the account is banned",
    "kick": "disconnected by an operator",
}


def revokedError(reason=None):
    """@return: the C{auth.revoked} error that ends a revoked login's session."""
    return ErrorInfo(REVOKED, _REVOKED_MESSAGES.get(reason, "your login was revoked"))
