"""Channel and party history: recent messages kept in the volatile store, written in batches."""

from twisted.internet.defer import Deferred
from twisted.logger import Logger


class History:
    """
    The last C{[chat] history} messages of each channel and party.  One
    write is in flight at a time; entries recorded meanwhile go together in
    the next one, so busy channels cost few store round trips.
    """

    log = Logger()

    def __init__(self, store, config):
        self.store = store
        self.config = config
        self._pending = []
        self._writing = False
        self._waiters = []

    def record(self, target, ts, entry):
        """Keep C{entry} in the history of C{target} (a channel, or C{party:<id>})."""
        if self.config.history <= 0:
            return
        self._pending.append((target, ts, entry))
        if not self._writing:
            self._writing = True
            Deferred.fromCoroutine(self._write())

    async def _write(self):
        config = self.config
        try:
            while self._pending:
                batch, self._pending = self._pending[:200], self._pending[200:]
                await self.store.pushHistory(batch, config.history, config.history_ttl)
        except Exception as e:
            self.log.warn("chat history write failed: {why}", why=e)
            self._pending = []
        finally:
            self._writing = False
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    async def flush(self):
        """Wait until every recorded entry is written."""
        if self._writing:
            d = Deferred()
            self._waiters.append(d)
            await d

    async def read(self, target):
        """@return: C{target}'s history, oldest first, once pending entries are written."""
        await self.flush()
        return await self.store.history(target)
