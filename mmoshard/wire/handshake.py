"""The start and end of a session on a connection: hello (token, client gate, account claim, welcome), its timeout, and bye."""

import secrets

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.wire import errors, inflight
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.states import CLOSING, HANDSHAKE, LEAVING, NEW

_log = Logger()

# How long bye waits for the answers to the client's requests in flight:
# as long as a closing connection may take to flush (connection.CLOSE_TIMEOUT).
BYE_WAIT = 5.0


def hello(conn, message):
    """A C{hello} on a new connection: check it, then open a session."""
    if not conn.startHandshake():
        conn.sendError(ErrorInfo(errors.BAD_REQUEST, "hello already sent"), message.get("id"))
        return
    d = Deferred.fromCoroutine(_hello(conn, message))
    d.addErrback(handshakeCrashed, conn)


def handshakeCrashed(failure, conn):
    """A bug in the handshake: log it (throttled per client) and close the connection with C{internal}."""
    if conn.manager.logThrottle.allow(f"{failure.type.__name__} in hello", conn.peerHost):
        _log.failure("handshake from {peer} failed", failure, peer=conn.peerHost,
                     **conn.logIds())
    conn.fail(ErrorInfo(errors.INTERNAL, "internal error"))


async def _hello(conn, message):
    requestId = message.get("id")
    token = message.get("token")
    version = message.get("client_version", "")
    platform = message.get("platform", "")
    if not (
        isinstance(token, str)
        and isinstance(version, str)
        and isinstance(platform, str)
        and len(version) <= 64
        and len(platform) <= 64
    ):
        conn.fail(
            ErrorInfo(errors.BAD_REQUEST, "hello needs a str token, client_version and platform"),
            requestId,
        )
        return
    manager = conn.manager
    verifier = manager.tokenVerifier()
    if verifier is None:
        conn.fail(ErrorInfo(errors.UNAVAILABLE, "no token verifier", 5.0), requestId)
        return
    try:
        claims = await verifier.verify(token)
    except InvalidToken as e:
        conn.fail(ErrorInfo(errors.INVALID_TOKEN, f"access token {e.reason}"), requestId)
        return
    except VolatileUnavailable:
        conn.fail(ErrorInfo(errors.UNAVAILABLE, "cannot check the token now",
                            errors.UNAVAILABLE_RETRY_AFTER), requestId)
        return
    # Each await may have let the connection close (hello timeout, loss).
    if conn.state != HANDSHAKE:
        return
    gate = manager.gate()
    if gate is not None:
        refusal = await gate.check(claims, version, platform)
        if conn.state != HANDSHAKE:
            return
        if refusal is not None:
            conn.fail(refusal, requestId)
            return
    sessionId = secrets.token_hex(12)
    await manager.claimAccount(claims, sessionId)
    if conn.state != HANDSHAKE:
        manager.releaseAccount(claims.account_id, sessionId)
        return
    # A revocation heard while the gate or the claim was awaited found no
    # session to end: look again now that nothing is awaited any more.
    if verifier.isRevoked(claims):
        manager.releaseAccount(claims.account_id, sessionId)
        conn.fail(ErrorInfo(errors.INVALID_TOKEN, "access token revoked"), requestId)
        return
    session = manager.createSession(conn, sessionId, claims, version, platform)
    conn.attach(session)
    config = manager.config
    body = {
        "t": "welcome",
        "session_id": session.sessionId,
        "account_id": session.accountId,
        "heartbeat_s": config.heartbeat,
        "resume_token": session.resumeToken,
        "resume_grace_s": config.resume_grace,
        "max_frame": config.max_frame,
        "server_time": conn.seconds(),
    }
    if requestId is not None:
        body["id"] = requestId
    conn.sendMessage(body)
    manager.notifyStarted(session)


def helloTimedOut(conn):
    """No session within C{session.hello_timeout} of the accept: close."""
    if conn.state in (NEW, HANDSHAKE):
        if not conn.link.ready:
            # The WebSocket upgrade never finished: nothing to say it in.
            conn.abort()
            return
        conn.fail(ErrorInfo(errors.HELLO_TIMEOUT, "no hello in time"))


def secondHello(conn, message):
    """A hello or resume in a session: refused, the session goes on."""
    conn.sendError(ErrorInfo(errors.BAD_REQUEST, "already in a session"), message.get("id"))


def bye(conn, message):
    """
    The client logs out.  Its requests still in flight are answered first,
    for up to L{BYE_WAIT} seconds (those that are not are named in bye's
    reply as C{unanswered}, and their answers are not sent); then bye's
    reply, the session's end (reason logout) and the close.  What the client
    sends after bye is not taken.
    """
    session = conn.session
    conn.state = LEAVING
    # With nothing in flight this runs through at once, in this call.
    waiting = Deferred.fromCoroutine(inflight.answeredFor(conn.manager, conn, BYE_WAIT))
    waiting.addCallback(_loggedOut, conn, session, message)
    waiting.addErrback(_byeFailed, conn)


def _loggedOut(unanswered, conn, session, message):
    reply = {"t": "bye"}
    if "id" in message:
        reply["id"] = message["id"]
    if unanswered:
        reply["unanswered"] = unanswered
    if conn.state < CLOSING:
        conn.sendMessage(reply)
    # The link may have dropped while bye waited (the session is then
    # link-dead, and still logs out), or the session resumed elsewhere.
    if not session.ended and session.conn in (conn, None):
        conn.manager.endSession(session, "logout")
    conn.close()


def _byeFailed(failure, conn):
    _log.failure("bye from {peer} failed", failure, peer=conn.peerHost, **conn.logIds())
    conn.abort()
