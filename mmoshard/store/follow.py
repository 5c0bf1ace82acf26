"""Follow state kept in the volatile store: a pub/sub channel for changes as they happen, a periodic re-read for what it missed."""

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.store.errors import VolatileUnavailable


class Follower:
    """
    Keeps an in-memory copy in step with the volatile store.

    C{read()} (an async callable) reads the store and applies what it finds,
    raising when the store fails.  Messages on C{channel} go to
    C{onMessage(channel, message)} when given (it may call L{refresh}), else
    each one triggers a re-read.  Every C{interval} seconds the copy is read
    again, which covers messages lost while the pub/sub connection was down.
    Reads never overlap: asking for one while one runs folds into a single
    read right after it.  Store failures are logged once per outage.
    """

    log = Logger()

    def __init__(self, volatile, clock, channel, read, interval, what, onMessage=None):
        self.volatile = volatile
        self.clock = clock
        self.channel = channel
        self.read = read
        self.interval = interval
        self.what = what
        self.onMessage = onMessage
        self.failing = False
        self.running = False
        self._subscription = None
        self._loop = None
        self._reading = None
        self._again = False

    def start(self):
        """
        Subscribe, read once and keep reading.

        @return: a Deferred firing after the first read (which may have
            failed: see C{failing}); it never fails itself.
        """
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        if self.running:
            return
        self.running = True
        try:
            self._subscription = await self.volatile.subscribe(
                self.channel, self._received
            )
        except VolatileUnavailable as e:
            # A Redis store keeps the subscription wanted and activates it
            # when Redis is back; hold it so stop() can end it.
            self._subscription = getattr(e, "subscription", None)
            self.log.warn(
                "cannot subscribe to {what} changes yet ({why}); re-reading every {interval}s",
                what=self.what,
                why=e,
                interval=self.interval,
            )
        await self.refresh()
        if not self.running:
            return
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False)

    def _received(self, channel, message):
        if self.onMessage is not None:
            self.onMessage(channel, message)
        else:
            self.refresh()

    def refresh(self):
        """
        Read now, or right after the read under way.

        @return: a Deferred firing when that read is done; it never fails.
        """
        if self._reading is not None:
            self._again = True
            return self._reading
        d = self._reading = Deferred.fromCoroutine(self._guardedRead())

        def done(result):
            self._reading = None
            if self._again and self.running:
                self._again = False
                return self.refresh()
            self._again = False
            return result

        return d.addBoth(done)

    async def _guardedRead(self):
        try:
            await self.read()
        except Exception as e:
            if not self.failing:
                self.log.warn("cannot read {what}: {why}", what=self.what, why=e)
            self.failing = True
            return
        if self.failing:
            self.log.info("reading {what} again", what=self.what)
        self.failing = False

    def stop(self):
        """Stop reading and listening; @return: a Deferred."""
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        self.running = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            try:
                await subscription.unsubscribe()
            except Exception:
                # Stopping must not fail because Redis is gone.
                pass
