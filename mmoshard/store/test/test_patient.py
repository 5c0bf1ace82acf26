"""PatientEndpoint: retries failed connection attempts itself, silently, with backoff; stops when cancelled."""

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock, deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from mmoshard.store.patient import PatientEndpoint
from mmoshard.store.redis import RedisStore
from mmoshard.testservers import PrivateRedis


@implementer(IStreamClientEndpoint)
class FlakyEndpoint:
    """Refuses the first C{failures} attempts, then connects (returns C{"protocol"})."""

    def __init__(self, failures):
        self.failures = failures
        self.attempts = 0
        self.cancelled = 0

    def connect(self, factory):
        self.attempts += 1
        if self.attempts <= self.failures:
            return fail(ConnectionRefusedError())
        if self.failures < 0:
            # Never answers: the attempt stays pending until cancelled.
            return Deferred(lambda d: setattr(self, "cancelled", self.cancelled + 1))
        return succeed("protocol")


class PatientEndpointTests(TestCase):
    """Retrying inside the endpoint."""

    def test_interfaces(self):
        """PatientEndpoint and the test's FlakyEndpoint are IStreamClientEndpoint providers."""
        self.assertTrue(verifyObject(IStreamClientEndpoint, FlakyEndpoint(0)))
        self.assertTrue(verifyObject(IStreamClientEndpoint,
                                     PatientEndpoint(Clock(), FlakyEndpoint(0), 0.1, 2.0)))

    def test_retries_with_backoff_until_connected(self):
        """Refused attempts are retried after growing delays (capped), the last failure kept until the Deferred fires with the connection."""
        clock = Clock()
        inner = FlakyEndpoint(5)
        endpoint = PatientEndpoint(clock, inner, 0.1, 0.5)
        d = endpoint.connect(object())
        got = []
        d.addCallback(got.append)
        self.assertEqual(inner.attempts, 1)
        self.assertEqual((endpoint.failures, endpoint.lastError),
                         (1, str(ConnectionRefusedError())))
        # Delays: 0.1, 0.2, 0.4, 0.5, 0.5 (each plus up to 0.1 of jitter).
        for expected, step in [(2, 0.2), (3, 0.3), (4, 0.5), (5, 0.6), (6, 0.6)]:
            clock.advance(step)
            self.assertEqual(inner.attempts, expected)
        self.assertEqual(got, ["protocol"])
        self.assertIsNone(endpoint.lastError)

    def test_cancel_while_waiting_stops_retrying(self):
        """Cancelling between attempts fails the Deferred with CancelledError, and no attempt follows."""
        clock = Clock()
        inner = FlakyEndpoint(100)
        d = PatientEndpoint(clock, inner, 0.1, 2.0).connect(object())
        d.cancel()
        self.failureResultOf(d, CancelledError)
        clock.advance(10)
        self.assertEqual(inner.attempts, 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancel_during_attempt_stops_retrying(self):
        """Cancelling during an attempt cancels the attempt, and no retry follows."""
        clock = Clock()
        inner = FlakyEndpoint(-1)
        d = PatientEndpoint(clock, inner, 0.1, 2.0).connect(object())
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(inner.cancelled, 1)
        clock.advance(10)
        self.assertEqual(inner.attempts, 1)


class RedisOutageLogTests(TestCase):
    """What a RedisStore logs through a Redis outage (a private Redis, stopped and restarted)."""

    timeout = 60

    async def test_outage_logs_per_outage_not_per_retry(self):
        """Three seconds of outage: one warning, then one line when Redis is back; no retry line per attempt."""
        redis = await PrivateRedis(self).start()
        store = RedisStore(reactor, "127.0.0.1", redis.port, prefix="t:", timeout=0.5)
        store.open()
        self.addCleanup(store.close)
        await store.set("k", "v")
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        await redis.stop()
        for _ in range(6):
            try:
                await store.get("k")
            except Exception:
                pass
            await deferLater(reactor, 0.5, lambda: None)
        await redis.start()
        for _ in range(40):
            try:
                await store.ping()
                break
            except Exception:
                await deferLater(reactor, 0.1, lambda: None)
        texts = [e.get("log_format", "") for e in events]
        retries = [t for t in texts if t.startswith("Scheduling retry")]
        # ClientService logs once for each connection that drops (the five
        # pool connections and the pub/sub one); the attempts after that are
        # the PatientEndpoint's, unlogged.  Before, each attempt of each
        # connection logged (~20 lines here, ~3 a second for a long outage).
        self.assertLessEqual(len(retries), store.poolsize + 1, texts)
        self.assertEqual(sum("unavailable" in t for t in texts), 1, texts)
        self.assertEqual(sum("answering again" in t for t in texts), 1, texts)
