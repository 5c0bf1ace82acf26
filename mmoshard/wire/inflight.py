"""Role requests in flight, and what a stopping node does with them: it answers those it took before its shutdown notice and names the rest in it, for the client to send again where it resumes."""

from twisted.internet.defer import Deferred


def track(manager, d, conn, requestId):
    """Request C{requestId} of C{conn} is in flight until C{d} fires (after its reply went out)."""
    manager.inflight[d] = (conn, requestId)
    d.addBoth(_answered, manager, d)


def _answered(result, manager, d):
    inflight = manager.inflight
    inflight.pop(d, None)
    if not inflight and manager.settled is not None:
        waiter, manager.settled = manager.settled, None
        waiter.callback(None)
    return result


def notTaken(conn, message):
    """A role request that arrived while the node stops: not handled, its id named in the shutdown notice."""
    requestId = message.get("id")
    if requestId is not None:
        conn.manager.untaken.setdefault(conn, []).append(requestId)


async def answerTaken(manager, within):
    """Wait until every request in flight is answered, at most C{within} seconds."""
    if not manager.inflight:
        return
    waiter = manager.settled = Deferred()
    timer = manager.clock.callLater(within, lambda: waiter.called or waiter.callback(None))
    await waiter
    manager.settled = None
    if timer.active():
        timer.cancel()


async def answeredFor(manager, conn, within):
    """
    Wait until the requests of C{conn} in flight are answered, at most
    C{within} seconds.  @return: the ids of those still unanswered.
    """
    taken = [d for d, (c, _) in manager.inflight.items() if c is conn]
    if taken:
        waiter = Deferred()
        left = [len(taken)]

        def one(result):
            left[0] -= 1
            if not left[0] and not waiter.called:
                waiter.callback(None)
            return result

        for d in taken:
            d.addBoth(one)
        timer = manager.clock.callLater(within, lambda: waiter.called or waiter.callback(None))
        await waiter
        if timer.active():
            timer.cancel()
    return unansweredOf(manager, conn)


def unansweredOf(manager, conn):
    """@return: the ids of the requests of C{conn} taken and not answered yet."""
    return [rid for c, rid in manager.inflight.values() if c is conn and rid is not None]


def noticeFor(manager, conn, notice):
    """
    C{notice} (server.shutdown, resume: true) for C{conn}: C{pending}, the
    request ids it sent that this node did not take (the client sends
    them again after its resume), and C{unanswered}, those taken whose
    answer did not come in time (their outcome is unknown).
    """
    body = dict(notice)
    body["pending"] = manager.untaken.pop(conn, [])
    body["unanswered"] = unansweredOf(manager, conn)
    return body
