"""WaitingCopy: a matcher's copy of one queue's waiting tickets, kept current from TicketStore.changes."""

from mmoshard.matchmaking.store import START


class WaitingCopy:
    """
    The waiting tickets of one queue as the lease holder's matcher sees
    them, read incrementally: a pass costs one round trip carrying only what
    entered or left since the last (a fresh copy, or one left behind the
    store's kept history, reads the whole queue by pages once).

    The copy may lag the store by what happened since the last
    L{refresh}; L{TicketStore.propose} checks every ticket atomically, so a
    stale one only costs a refused proposal, and the next refresh drops it.
    """

    def __init__(self, store, queue, pageSize=5000):
        self.store = store
        self.queue = queue
        self.pageSize = pageSize
        self.cursor = START
        self._tickets = {}
        self._ordered = []

    def __len__(self):
        return len(self._tickets)

    async def refresh(self):
        """
        Apply what changed since the last refresh.

        @return: the waiting tickets, oldest first (by created, then id).
        """
        changed = False
        while True:
            changes = await self.store.changes(self.queue, self.cursor, self.pageSize)
            if changes.reset:
                self._tickets.clear()
                changed = True
            for tid in changes.left:
                changed |= self._tickets.pop(tid, None) is not None
            for ticket in changes.entered:
                self._tickets[ticket.id] = ticket
                changed = True
            self.cursor = changes.cursor
            if not changes.more:
                break
        if changed:
            self._ordered = sorted(self._tickets.values(), key=lambda t: (t.created, t.id))
        return self._ordered

    def tickets(self):
        """@return: the tickets of the last L{refresh}, oldest first, less those discarded since."""
        return self._ordered

    def discard(self, ticketIds):
        """
        Forget tickets just proposed, so the pass does not use them again
        before the next L{refresh} (which would drop them anyway).  Not for
        the tickets of a refused proposal: the others may still wait, and
        the next refresh drops the ones that do not.
        """
        ids = set(ticketIds)
        if ids & self._tickets.keys():
            for tid in ids:
                self._tickets.pop(tid, None)
            self._ordered = [t for t in self._ordered if t.id not in ids]
