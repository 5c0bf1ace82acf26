"""Taking up a queue's proposals in flight that no timer of this node covers: on taking its lease (resume), and every few seconds after (adopt)."""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.matchmaking.views import allAccepted, proposalBody
from mmoshard.store.slots import everyBatch

log = Logger()


async def resume(loop, queue):
    """
    Take over the proposals in flight of C{queue} on taking its lease:
    tell the unannounced matches, then L{takeUp} every proposal.  Their
    players may never have seen the check, or be reconnecting from the
    dead node: they are not to be removed for a check its holder's death
    cut short.
    """
    await loop.announcer.again(queue)
    proposals = await loop.store.proposals(queue)
    await takeUp(loop, queue, proposals, loop.finish)
    if proposals:
        log.info("mm node {node_id} resumed {count} proposal(s) of {queue}",
                 node_id=loop.service.nodeId, count=len(proposals), queue=queue)


async def adopt(loop, queue):
    """
    L{takeUp} the proposals of C{queue} in flight that no timer of this
    holder covers: one whose store write succeeded though its answer
    missed its deadline (never told to its players), or one made by a
    holder paused, not dead, past its lease after this node's takeover
    read (it stops timing them at its next renewal).  Else nobody would
    end them.
    """
    began = loop.clock.seconds()
    # Only the ids, every 5 s: the few untimed are read whole.
    ids = await loop.store.proposalIds(queue)
    # Ended here after the read was sent: it is stale about them.
    mine = queue + "/"
    ended = {m for m, at in loop.endedAt.items() if at >= began and m.startswith(mine)}
    loop.endedAt = {m: at for m, at in loop.endedAt.items()
                    if at >= began or not m.startswith(mine)}
    if queue not in loop.held:
        return
    untimedIds = [m for m in ids
                  if not (m in loop.timers or m in loop.settling or m in loop.ending
                          or m in loop.proposing or m in ended)]
    if not untimedIds:
        return
    found = await everyBatch(
        untimedIds, lambda m: Deferred.fromCoroutine(loop.store.proposal(m)))
    untimed = [p for p in found if p is not None]  # (None: ended meanwhile)
    if queue not in loop.held:
        return
    # (An accepted one is read again first: an instance is made only for a
    # proposal still there.)
    taken = await takeUp(loop, queue, untimed, lambda p: loop.settled(p.match_id))
    if taken:
        log.warn("mm node {node_id} adopted {count} untimed proposal(s) of {queue}: {matches}",
                 node_id=loop.service.nodeId, count=len(taken), queue=queue, matches=taken)


async def takeUp(loop, queue, proposals, finish):
    """
    Finish (with C{finish}(proposal)) the C{proposals} everyone accepted;
    give the others a whole ready check from now (the store's C{extend}),
    send their members who did not accept C{mm.proposal} again, and time
    them.

    @return: the ids of the proposals taken up (not found ended).
    """
    now = loop.clock.seconds()
    fresh = now + loop.config.readyTimeout(loop.service.queues[queue])
    late = [p for p in proposals if not allAccepted(p) and p.expires_at < fresh]
    extended = {}
    if late:
        # (Concurrently: a takeover comes in a reconnection storm, when
        # each round trip is slow.)
        found = await everyBatch(
            late, lambda p: Deferred.fromCoroutine(loop.store.extend(p, fresh)))
        extended = {p.match_id: e for p, e in zip(late, found)}
    send = loop.service.courier.send
    taken = []
    for p in proposals:
        if allAccepted(p):
            loop.spawn(finish(p), "finishing", p.match_id)
            taken.append(p.match_id)
            continue
        if p.match_id in extended:
            p = extended[p.match_id]
            if p is None:
                continue  # (ended meanwhile)
        for slot in p.slots:
            if slot.character_id not in p.accepted:
                send([slot.character_id], "mm.proposal", proposalBody(p, slot.character_id, now))
        loop.time(p, now)
        taken.append(p.match_id)
    return taken
