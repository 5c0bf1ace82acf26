"""The lease holder's telling of completed matches: each member's mm.matched, marked announced only once every send went out, and sent again when not."""

from twisted.internet.defer import DeferredList
from twisted.logger import Logger

from mmoshard.matchmaking.views import matchedBody

# Seconds between a holder's looks for completed matches whose mm.matched did
# not reach every member (a send the store failed): they are sent again.
ANNOUNCE_EVERY = 5.0


class Announcer:
    """
    Sends the C{mm.matched} of the matches a L{MatchLoop} completes, and
    again those of its queues still unannounced in the store: completed by
    a holder that died before they went out, or whose sends failed here.
    A member told twice gets the same match.
    """

    log = Logger()

    def __init__(self, service, spawn, busy, holds):
        """
        @param spawn: callable(coroutine, what, match) running it in the
            background, its failure logged (L{MatchLoop.spawn}).
        @param busy: callable(match) -> whether the match is being
            completed on this node (not to be announced from a read now).
        @param holds: callable(queue) -> whether this node holds its lease
            (else what is left to send is the new holder's).
        """
        self.service = service
        self.store = service.store
        self.clock = service.clock
        self.spawn = spawn
        self.busy = busy
        self.holds = holds
        self.announcedAt = {}  # held queue -> when its unannounced matches were last sent again
        self.announcing = set()  # match ids whose mm.matched are being sent from here
        self.unsent = {}  # match id -> (queue, members whose mm.matched did not go out from here)
        self.toldAt = {}  # match id -> when this node marked it announced

    def due(self, queue, now):
        """@return: whether C{queue}'s unannounced matches are to be read now (every L{ANNOUNCE_EVERY} s)."""
        if self.announcedAt.get(queue, -1e18) + ANNOUNCE_EVERY <= now:
            self.announcedAt[queue] = now
            return True
        return False

    def drop(self, queue):
        """This node no longer holds C{queue}: what it had left to send is the next holder's."""
        self.announcedAt.pop(queue, None)
        self.unsent = {m: v for m, v in self.unsent.items() if v[0] != queue}

    async def again(self, queue):
        """
        Send again the C{mm.matched} of C{queue}'s completed matches not
        marked announced (not those being completed or sent now).
        """
        self.announcedAt[queue] = began = self.clock.seconds()
        read = await self.store.unannounced(queue)
        if not self.holds(queue):
            return
        for match, records in read:
            if (match in self.announcing or self.busy(match)
                    or self.toldAt.get(match, -1e18) >= began):
                # Being completed or told here, or marked announced after
                # this read was sent (replies on pooled connections may
                # come back out of order).
                continue
            unsent = self.unsent.get(match)
            if unsent is not None:
                # Told from here before: only those it did not reach.
                records = [r for r in records if r.character_id in unsent[1]]
            self.log.info("mm match {match} of {queue} announced again by node {node_id} for "
                          "{members}", match=match, queue=queue, node_id=self.service.nodeId,
                          members=[r.character_id for r in records])
            self.announce(queue, match, records)
        # A later read is sent after these marks: they no longer matter.
        self.toldAt = {m: t for m, t in self.toldAt.items() if t >= began}
        found = {match for match, _ in read}
        self.unsent = {m: v for m, v in self.unsent.items() if v[0] != queue or m in found}

    def announce(self, queue, match, records):
        """
        Send each member its C{mm.matched}; once every send went out, mark
        the match announced in the store (else L{again} sends them again).
        """
        send = self.service.courier.send
        sent = [send([r.character_id], "mm.matched", matchedBody(r)) for r in records]
        self.announcing.add(match)

        async def announced():
            try:
                results = await DeferredList(sent)
                missed = {r.character_id for r, (ok, count) in zip(records, results)
                          if not ok or count is None}
                if missed:
                    if self.holds(queue):
                        self.unsent[match] = (queue, missed)
                    self.log.warn("mm match {match} of {queue}: mm.matched not sent to "
                                  "{character_ids}; sent again within {every:.0f} s",
                                  match=match, queue=queue, character_ids=sorted(missed),
                                  every=ANNOUNCE_EVERY)
                    return
                self.unsent.pop(match, None)
                await self.store.announced(queue, [match])
                self.toldAt[match] = self.clock.seconds()
            finally:
                self.announcing.discard(match)

        self.spawn(announced(), "announcing", match)
