"""Position saves of the world: logout and transfer saves batched into one transaction, periodic saves staggered over the save interval."""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.world.progression import savePositions

# Logout/transfer saves wait this long to share a transaction.
SAVE_BATCH_DELAY = 0.05
# Periodic saves in flight at most: a slow database gets no pile-up.
MAX_PERIODIC_IN_FLIGHT = 3


class Saves:
    """
    Writes characters' positions.  A failed save is logged and reported as
    0 rows (False for L{soon}): the caller decides what that means (a
    transfer or a world.leave does not happen, a logout loses the moves
    since the last save).
    """

    log = Logger()

    def __init__(self, sql, clock, tasks, players, interval, observeBatch):
        """
        @param sql: the L{ISQLStore}.
        @param tasks: the service's L{Tasks}: saves in flight finish before it stops.
        @param players: the live mapping character id -> L{Player} periodic saves walk.
        @param interval: seconds between two periodic saves of one character.
        @param observeBatch: called with the row count of each committed save.
        """
        self.sql = sql
        self.clock = clock
        self.tasks = tasks
        self.players = players
        self.slots = max(1, int(interval))
        self.observeBatch = observeBatch
        self._batch = []
        self._batchCall = None
        self._inFlight = 0

    def soon(self, player):
        """
        Save one player's position (as it is now) in the next batch.

        @return: a Deferred firing with True once committed, False when the
            save failed.
        """
        d = Deferred()
        row = player.position() + (player.characterId,)
        self._batch.append((row, d))
        if self._batchCall is None:
            self._batchCall = self.clock.callLater(SAVE_BATCH_DELAY, self.flush)
        return d

    def flush(self):
        """Save the batch now. @return: a Deferred firing once it is committed (or failed)."""
        if self._batchCall is not None and self._batchCall.active():
            self._batchCall.cancel()
        self._batchCall = None
        batch, self._batch = self._batch, []
        if not batch:
            return Deferred.fromCoroutine(self.rows([], "logout"))
        rows = {}
        for row, _ in batch:
            rows[row[-1]] = row  # the newest position of a character wins
        d = self.tasks.track(Deferred.fromCoroutine(self.rows(list(rows.values()), "logout")))

        def done(result):
            saved = isinstance(result, int) and result > 0
            for _, waiter in batch:
                waiter.callback(saved)
            return result

        return d.addBoth(done)

    async def rows(self, rows, why):
        """Save C{rows} ((zone, x, y, z, character id) tuples) in one transaction. @return: the count saved."""
        if not rows:
            return 0
        try:
            n = await savePositions(self.sql, rows)
        except StoreError as e:
            self.log.error("saving {count} positions ({why}) failed: {error}",
                           count=len(rows), why=why, error=e)
            return 0
        self.observeBatch(n)
        return n

    def periodic(self, second):
        """Save the live players of this second's slot whose position changed."""
        slots = self.slots
        slot = second % slots
        rows = []
        batch = []
        for p in self.players.values():
            if p.characterId % slots != slot or p.state != "live":
                continue
            pos = p.position()
            if pos != p.saved:
                rows.append(pos + (p.characterId,))
                batch.append((p, pos))
        if not rows or self._inFlight >= MAX_PERIODIC_IN_FLIGHT:
            return
        self._inFlight += 1

        def done(n):
            self._inFlight -= 1
            if n:
                for p, pos in batch:
                    p.saved = pos

        self.tasks.track(Deferred.fromCoroutine(self.rows(rows, "periodic"))).addCallback(done)
