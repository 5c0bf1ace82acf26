"""Resuming a link-dead (or not yet noticed lost) session on a new connection, and replaying what it missed."""

import secrets

from twisted.internet.defer import Deferred

from mmoshard.store.errors import StoreError, VolatileUnavailable
from mmoshard.tokens import InvalidToken
from mmoshard.wire import errors
from mmoshard.wire.errors import ErrorInfo
from mmoshard.wire.handshake import handshakeCrashed
from mmoshard.wire.moves import moveOwner, takeIn
from mmoshard.wire.owners import ownersKey, supplanted
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
    if session is None and manager.resumeStore is not None:
        conn.startHandshake()
        d = Deferred.fromCoroutine(_resumeMoved(conn, token, lastSeq, requestId))
        d.addErrback(handshakeCrashed, conn)
        return
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


async def _resumeMoved(conn, token, lastSeq, requestId):
    """
    A resume of a session this node does not hold: take it over from the
    volatile store (its node stopped, crashed, or the client came here).
    """
    manager = conn.manager
    sessionId, _, secret = token.partition(".")
    taken = None
    if sessionId and secret:
        newSecret = secrets.token_urlsafe(24)
        try:
            taken = await manager.resumeStore.take(sessionId, secret, newSecret)
        except StoreError:
            conn.fail(ErrorInfo(errors.UNAVAILABLE, "cannot resume now", 5.0), requestId)
            return
    if taken is None:
        conn.fail(ErrorInfo(errors.RESUME_FAILED, "unknown or expired resume token"), requestId)
        return
    if await _supplanted(manager, sessionId, taken):
        # Adopting it would end the newer session in its place.
        manager.resumeStore.forget(sessionId)
        conn.fail(ErrorInfo(errors.REPLACED, "a newer session of the account took this one's place"),
                  requestId)
        return
    session = manager.adoptSession(sessionId, taken)
    session.resumeSecret = newSecret
    if lastSeq > session.seq:
        # The old node crashed after sending events it had not stored yet:
        # the client has them, nothing is missing.
        session.restore(lastSeq, (), None)
    await moveOwner(manager, session, taken.fromNode)
    try:
        await manager.tokenVerifier().checkRevoked(session.claims)
    except InvalidToken:
        info = errors.revokedError()
        manager.endSession(session, "revoked", info)
        conn.fail(info, requestId)
        return
    except VolatileUnavailable:
        pass  # as at the holding node, a late revocation still ends it when heard
    # The roles take the session in before the client hears it resumed (what
    # they send meanwhile is replayed to it below).
    await takeIn(manager, session, taken.fromNode)
    if session.ended:
        conn.fail(ErrorInfo(errors.RESUME_FAILED, "the session ended meanwhile"), requestId)
        return
    if conn.state != HANDSHAKE:
        # The client left meanwhile: the session waits here, link-dead.
        manager.linkLost(session)
        return
    replay(conn, session, lastSeq, requestId, taken.fromNode)


async def _supplanted(manager, sessionId, taken):
    """Whether a newer session of the account took the taken one's place meanwhile (L{supplanted})."""
    if not manager.config.one_session_per_account or manager.volatile is None:
        return False
    try:
        owners = await manager.volatile.hgetall(ownersKey(taken.claims.account_id))
    except StoreError:
        return False  # as a claim does in an outage: the rule weakens, nothing is refused
    return supplanted(owners, sessionId, taken.claims.sid, ",".join(sorted(manager.namespaces)),
                      taken.fromNode)


def replay(conn, session, lastSeq, requestId, movedFrom=None):
    """
    Move C{session} to C{conn} and send it what it was sent after
    C{lastSeq}, or end it when that is no longer buffered.  C{movedFrom}:
    the node it held it before, when it was taken over from there.
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
    if movedFrom is None:
        session.rotateResumeToken()
        if session.resumeStore is not None:
            session.resumeStore.rotated(session)
    conn.attach(session)
    body = {
        "t": "resumed",
        "session_id": session.sessionId,
        "resume_token": session.resumeToken,
        "heartbeat_s": manager.config.heartbeat,
        "replayed": len(missed),
        "server_time": conn.seconds(),
    }
    if movedFrom is not None:
        body["moved"] = True
    if requestId is not None:
        body["id"] = requestId
    conn.sendMessage(body)
    for payload, kind in missed:
        conn.sendEncoded(payload, kind)
    if movedFrom is None:
        manager.notifyResumed(session)
