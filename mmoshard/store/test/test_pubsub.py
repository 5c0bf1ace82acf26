"""The pub/sub contract both volatile stores pass: the memory store on a Clock, Redis for real."""

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import ISubscription
from mmoshard.store.test.fixtures import MemoryFixture, RedisFixture


class PubSubContract:
    """Pub/sub: what every IVolatileStore must do."""

    async def test_subscribeAndPublish(self):
        """
        A subscription (an ISubscription) receives what is published as bytes; publish counts the
        receivers.
        """
        s = self.store
        got = []
        subscription = await s.subscribe("chat", lambda *a: got.append(a))
        self.assertTrue(verifyObject(ISubscription, subscription))
        self.assertEqual(subscription.channel, "chat")
        self.assertEqual(await s.publish("chat", b"hi"), 1)
        self.assertEqual(await s.publish("chat", "h\u00e9"), 1)
        await self.eventually(lambda: len(got) == 2)
        self.assertEqual(got, [("chat", b"hi"), ("chat", "h\u00e9".encode())])
        self.assertEqual(await s.publish("nobody", b"x"), 0)

    async def test_unsubscribe(self):
        """
        After unsubscribe() nothing more is delivered; a second unsubscribe is harmless and the
        channel can be subscribed again.
        """
        s = self.store
        got = []
        subscription = await s.subscribe("chat", lambda *a: got.append(a))
        self.assertIsNone(await subscription.unsubscribe())
        self.assertEqual(await s.publish("chat", b"late"), 0)
        await self.settle()
        self.assertEqual(got, [])
        # unsubscribing twice is harmless, and the channel can be reused
        await subscription.unsubscribe()
        await s.subscribe("chat", lambda *a: got.append(a))
        self.assertEqual(await s.publish("chat", b"again"), 1)
        await self.eventually(lambda: got == [("chat", b"again")])

    async def test_severalSubscriptions(self):
        """Every subscription on a channel gets each message; ending one leaves the others."""
        s = self.store
        first, second = [], []
        one = await s.subscribe("chat", lambda c, m: first.append(m))
        await s.subscribe("chat", lambda c, m: second.append(m))
        await s.publish("chat", b"both")
        await self.eventually(lambda: first == [b"both"] and second == [b"both"])
        await one.unsubscribe()
        await s.publish("chat", b"second only")
        await self.eventually(lambda: second == [b"both", b"second only"])
        self.assertEqual(first, [b"both"])

    async def test_prefixIsolatesChannels(self):
        """
        Channels are namespaced by the store prefix: stores with other prefixes neither hear nor
        count.
        """
        a, b = self.store, self.makeStore("b:")
        gotA, gotB = [], []
        await a.subscribe("chat", lambda c, m: gotA.append(m))
        self.assertEqual(await b.publish("chat", b"from b"), 0)
        await b.subscribe("chat", lambda c, m: gotB.append((c, m)))
        self.assertEqual(await a.publish("chat", b"from a"), 1)
        self.assertEqual(await b.publish("chat", b"from b"), 1)
        await self.eventually(lambda: gotA and gotB)
        await self.settle()
        self.assertEqual(gotA, [b"from a"])
        self.assertEqual(gotB, [("chat", b"from b")])

    async def test_failingCallbackIsLogged(self):
        """
        A callback that raises, or an async one that fails, is logged and does not stop delivery to
        the others.
        """
        s = self.store
        got = []

        async def asyncCallback(channel, message):
            got.append(("async", message))
            raise KeyError(message)

        await s.subscribe("chat", lambda c, m: 1 / 0)
        await s.subscribe("chat", asyncCallback)
        await s.subscribe("chat", lambda c, m: got.append(m))
        await s.publish("chat", b"x")
        await s.publish("chat", b"y")
        await self.eventually(lambda: len(got) == 4)
        self.assertEqual(got, [("async", b"x"), b"x", ("async", b"y"), b"y"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)


class MemoryPubSubTests(PubSubContract, MemoryFixture, TestCase):
    """Pub/sub on MemoryStore, delivered from a Clock."""


class RedisPubSubTests(PubSubContract, RedisFixture, TestCase):
    """Pub/sub on a real Redis."""
