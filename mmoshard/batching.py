"""Batcher: calls that arrive while a round trip is out go together in the next one; RandomHex: random ids from one system call per batch."""

import os

from twisted.internet.defer import Deferred


class Batcher:
    """
    Items L{submit}ted while a C{send} is out go together in the next
    C{send} (up to C{maxBatch} each); a second C{send} overlaps the first
    once C{overlap} items wait (at most C{maxInFlight} out).  Idle, an item
    goes at once, so a lone request waits no longer than before.

    @param send: an C{async} callable taking a list of items and returning
        one result per item, in order.  When it raises, every item of that
        batch gets the exception.
    """

    def __init__(self, send, maxBatch=500, overlap=100, maxInFlight=2):
        self.send = send
        self.maxBatch = maxBatch
        self.overlap = overlap
        self.maxInFlight = maxInFlight
        self._waiting = []
        self._senders = 0

    async def submit(self, item):
        """@return: C{send}'s result for C{item}, from the batch it went in."""
        d = Deferred()
        self._waiting.append((item, d))
        senders = self._senders
        if not senders or (senders < self.maxInFlight and len(self._waiting) >= self.overlap):
            self._senders = senders + 1
            Deferred.fromCoroutine(self._drain())
        return await d

    async def _drain(self):
        try:
            while self._waiting:
                batch = self._waiting[:self.maxBatch]
                del self._waiting[:self.maxBatch]
                try:
                    results = await self.send([item for item, _ in batch])
                except Exception as e:
                    for _, d in batch:
                        d.errback(e)
                    continue
                for (_, d), result in zip(batch, results):
                    d.callback(result)
        finally:
            self._senders -= 1


def keyed(read):
    """
    A C{send} for L{Batcher} over a read of many keys at once: C{read}
    takes the batch's distinct keys, sorted, and returns a dict; each item
    (a key) gets its value, or None when the dict has none.
    """

    async def send(keys):
        found = await read(sorted(set(keys)))
        return [found.get(key) for key in keys]

    return send


class RandomHex:
    """
    Random ids of C{size} bytes, as hex (what C{secrets.token_hex(size)}
    gives), cut from one C{os.urandom} read per C{batch} ids: a storm of
    new tickets otherwise makes a system call each.
    """

    def __init__(self, size=8, batch=256):
        self._width = 2 * size
        self._read = size * batch
        self._hex = ""
        self._at = 0

    def next(self):
        """@return: a new id."""
        at = self._at
        if at >= len(self._hex):
            self._hex = os.urandom(self._read).hex()
            at = 0
        self._at = at + self._width
        return self._hex[at:at + self._width]
