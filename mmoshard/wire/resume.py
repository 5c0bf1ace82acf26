"""Resuming a link-dead (or not yet noticed lost) session on a new connection, and replaying what it missed."""

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.handshake import handshakeCrashed
from mmoshard.wire.states import HANDSHAKE, NEW


def resume(conn, message):
    """A C{resume} on a new connection: find the session, check its login, replay."""
    requestId = message.get("id")
    if conn.state != NEW:
        conn.sendError(ErrorInfo(errors.BAD_REQUEST, "hello already sent"), requestId)
        return
    token = message.get("resume_token")
    lastSeq = message.get("last_seq", 0)
    if not isinstance(token, str) or type(lastSeq) is not int or lastSeq < 0:
        conn.fail(
            ErrorInfo(errors.BAD_REQUEST, "resume needs a str resume_token and an int last_seq"),
            requestId,
        )
        return
    manager = conn.manager
    session = manager.findResumable(token)
    if session is None:
        conn.fail(ErrorInfo(errors.RESUME_FAILED, "unknown or expired resume token"), requestId)
        return
    # A revoked login's sessions are ended when the revocation is heard;
    # this covers one heard late.  The access token may have expired
    # since the hello: only revocation is checked.
    conn.startHandshake()
    d = manager.tokenVerifier().checkRevoked(session.claims)
    d.addCallbacks(
        _checked,
        _refused,
        callbackArgs=(conn, session, lastSeq, requestId),
        errbackArgs=(conn, session, requestId),
    )
    d.addErrback(handshakeCrashed, conn)


def _checked(result, conn, session, lastSeq, requestId):
    if conn.state != HANDSHAKE:
        return
    if session.ended:
        conn.fail(ErrorInfo(errors.RESUME_FAILED, "the session ended meanwhile"), requestId)
        return
    replay(conn, session, lastSeq, requestId)


def _refused(failure, conn, session, requestId):
    manager = conn.manager
    if failure.check(InvalidToken):
        info = errors.revokedError()
        manager.endSession(session, "revoked", info)
        conn.fail(info, requestId)
        return
    failure.trap(VolatileUnavailable)
    # The session stays link-dead: the client may try again.
    conn.fail(ErrorInfo(errors.UNAVAILABLE, "cannot check the login now", 5.0), requestId)


def replay(conn, session, lastSeq, requestId):
    """
    Move C{session} to C{conn} and send it what it was sent after
    C{lastSeq}, or end it when that is no longer buffered.
    """
    manager = conn.manager
    missed = session.replayAfter(lastSeq)
    if lastSeq > session.seq or missed is None:
        why = (
            "last_seq is ahead of the server"
            if lastSeq > session.seq
            else "missed messages are no longer buffered"
        )
        info = ErrorInfo(errors.RESUME_FAILED, why)
        manager.endSession(session, "resume_failed", info)
        conn.fail(info, requestId)
        return
    old = session.conn
    if old is not None:
        # The client noticed the loss before we did: retire the old link.
        old.retire()
    manager.resumeSession(session)
    session.rotateResumeToken()
    conn.attach(session)
    body = {
        "t": "resumed",
        "session_id": session.sessionId,
        "resume_token": session.resumeToken,
        "heartbeat_s": manager.config.heartbeat,
        "replayed": len(missed),
        "server_time": conn.seconds(),
    }
    if requestId is not None:
        body["id"] = requestId
    conn.sendMessage(body)
    for payload, kind in missed:
        conn.sendEncoded(payload, kind)
    manager.notifyResumed(session)
