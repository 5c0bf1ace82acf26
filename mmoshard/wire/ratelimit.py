"""What a client that sends faster than its connection's token bucket allows gets: a warning, then a close."""

from twisted.logger import Logger

from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo

_log = Logger()

# The bucket itself (session.rate tokens a second, up to session.burst, one
# per message) is refilled and spent inline in Connection.messageReceived,
# the per-message path; conn.abuse counts the messages refused since the
# bucket was last full.


def flooded(conn, message):
    """
    C{message} found C{conn}'s bucket empty: refuse it with a retry hint,
    or close the connection after C{session.abuse_limit} refusals in a row.
    """
    config = conn.manager.config
    conn.abuse += 1
    if conn.abuse >= config.abuse_limit:
        _log.info(
            "closing {peer} of session {session_id} (account {account_id}) "
            "for sustained flooding",
            peer=conn.peerHost,
            **conn.logIds(),
        )
        conn.fail(
            ErrorInfo(errors.RATE_LIMITED, "sustained flooding; closing"),
            message.get("id"),
        )
        return
    conn.sendError(
        ErrorInfo(errors.RATE_LIMITED, "too many messages; slow down", 1.0 / config.rate),
        message.get("id"),
    )
