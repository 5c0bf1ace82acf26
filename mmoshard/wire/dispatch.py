"""Dispatch: which function handles each built-in message, and what a role's handler returned (a reply, later or now, or a failure)."""

import inspect

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from mmoshard.store.errors import SQLUnavailable, VolatileUnavailable
from mmoshard.wire import errors
from mmoshard.wire.codec import encode
from mmoshard.wire.errors import ErrorInfo, ProtocolError
from mmoshard.wire.handshake import bye, hello, secondHello
from mmoshard.wire.inflight import track
from mmoshard.wire.states import CLOSING
from mmoshard.wire.liveness import ping, pong
from mmoshard.wire.resume import resume

_log = Logger()

# The built-in messages, before and after hello: tables of plain functions,
# called as handler(connection, message), shared by every connection.  The
# connection looks a message's type up here first, then in the manager's
# routes (the roles' handlers, called as handler(session, message)).
PRE_SESSION = {
    "hello": hello,
    "resume": resume,
    "ping": ping,
    "pong": pong,
}
IN_SESSION = {
    "hello": secondHello,
    "resume": secondHello,
    "ping": ping,
    "pong": pong,
    "bye": bye,
}


def handled(result, conn, kind, message):
    """What a route's handler returned: a reply, or a coroutine or Deferred of one."""
    if type(result) is dict:
        reply(result, conn, kind, message)
        return
    if inspect.iscoroutine(result):
        result = ensureDeferred(result)
    if isinstance(result, Deferred):
        waiting = not result.called
        result.addCallbacks(
            _asyncReply,
            handlerFailed,
            callbackArgs=(conn, kind, message),
            errbackArgs=(conn, kind, message),
        )
        if waiting:
            # In flight until its reply went out ([session] max_pending; a
            # stopping node answers it before its shutdown notice).
            track(conn.manager, result, conn, message.get("id"))
        return
    handlerFailed(_notADict(result), conn, kind, message)


def _notADict(result):
    return Failure(TypeError(f"handler returned {type(result).__name__}, not a dict"))


def _asyncReply(result, conn, kind, message):
    if result is None:
        return
    if type(result) is not dict:
        handlerFailed(_notADict(result), conn, kind, message)
        return
    reply(result, conn, kind, message)


def reply(body, conn, kind, message):
    """
    Send C{body} as the reply to C{message}: its type, with its request id.
    Not sent once the connection is closing: the close's own message (bye's
    reply, or the error that closed it) is the last its peer reads.
    """
    if conn.state >= CLOSING:
        return
    answer = dict(body)
    answer["t"] = kind
    requestId = message.get("id")
    if requestId is not None:
        answer["id"] = requestId
    try:
        payload = encode(answer)
    except Exception:
        handlerFailed(Failure(), conn, kind, message)
        return
    conn.sendEncoded(payload, kind)


def handlerFailed(failure, conn, kind, message):
    """
    A handler raised or failed: a L{ProtocolError} is the client's typed
    error; a store past its deadline (or down) is C{server.unavailable}
    with C{retry_after}; anything else is answered with C{internal}.  Both
    are logged, the first of a minute per client and kind (the manager's
    L{LogThrottle}: a client must not fill the log by repeating what fails).
    """
    if failure.check(ProtocolError):
        _answerError(conn, failure.value.info, message)
        return
    session = conn.session
    if failure.check(SQLUnavailable, VolatileUnavailable):
        if conn.manager.logThrottle.allow("store unavailable", conn.peerHost):
            _log.warn(
                "{type} in session {session_id} (account {account_id}) from {peer}: "
                "store unavailable: {why}",
                type=kind,
                session_id=session.sessionId if session else None,
                account_id=session.accountId if session else None,
                peer=conn.peerHost,
                why=failure.value,
            )
        _answerError(conn, ErrorInfo(errors.UNAVAILABLE, "a database is not answering",
                                     errors.UNAVAILABLE_RETRY_AFTER), message)
        return
    # Each bug (message type and exception type) apart: one does not hide another.
    if conn.manager.logThrottle.allow(f"{failure.type.__name__} in {kind}", conn.peerHost):
        _log.failure(
            "handler for {type} failed in session {session_id} (account {account_id}) "
            "from {peer}",
            failure,
            type=kind,
            session_id=session.sessionId if session else None,
            account_id=session.accountId if session else None,
            peer=conn.peerHost,
        )
    _answerError(conn, ErrorInfo(errors.INTERNAL, "internal error"), message)


def _answerError(conn, info, message):
    # As reply(): nothing after the close's own message.
    if conn.state < CLOSING:
        conn.sendError(info, message.get("id"))
