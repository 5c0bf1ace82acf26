"""RedisStore beyond the contract: failing fast through an outage, recovering, keepalive PINGs."""

import array
import shutil
import socket
import subprocess

import txredisapi

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.volatile import RedisStore, parseRedisURL
from mmoshard.testing import eventually, freePort, requireRedis, unavailable


class RedisOutageTests(TestCase):
    """A RedisStore fails fast while Redis is down and recovers by itself."""

    def startRedis(self, port):
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server binary", "not on PATH")
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def kill():
            if process.poll() is None:
                process.kill()
            process.wait()

        self.addCleanup(kill)
        return kill

    async def waitListening(self, port, timeout=5.0):
        for _ in range(int(timeout / 0.02)):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                await deferLater(reactor, 0.02, lambda: None)
        self.fail(f"redis-server did not listen on {port}")

    def makeStore(self, port, **kwargs):
        store = RedisStore(
            reactor, "127.0.0.1", port, prefix="outage:", timeout=0.5, poolsize=2,
            initialDelay=0.05, maxDelay=0.25, **kwargs
        )
        store.open()
        self.addCleanup(store.close)
        return store

    async def poll(self, attempt):
        """Retry C{attempt()} for up to 5 seconds until it stops raising VolatileUnavailable."""
        return await eventually(reactor, attempt, 5.0, 0.05, VolatileUnavailable)

    async def eventually(self, predicate, timeout=5.0):
        for _ in range(int(timeout / 0.02)):
            if predicate():
                return
            await deferLater(reactor, 0.02, lambda: None)
        self.fail(f"condition not met within {timeout}s")

    async def test_downAtStart(self):
        """
        With nothing listening, calls and subscribe fail with VolatileUnavailable within the
        timeout; the pending subscription is handed back.
        """
        store = self.makeStore(freePort())
        started = reactor.seconds()
        with self.assertRaises(VolatileUnavailable):
            await store.get("k")
        with self.assertRaises(VolatileUnavailable) as caught:
            await store.subscribe("c", lambda c, m: None)
        self.assertLess(reactor.seconds() - started, 2.0)
        pending = caught.exception.subscription
        self.assertEqual(pending.channel, "c")
        await pending.unsubscribe()

    async def test_outageAndRecovery(self):
        """
        Calls fail fast while Redis is down; afterwards commands work again and every wanted
        channel, old or subscribed during the outage, is subscribed again.
        """
        port = freePort()
        kill = self.startRedis(port)
        await self.waitListening(port)
        store = self.makeStore(port)
        got = []
        await store.subscribe("news", lambda c, m: got.append(m))
        self.assertEqual(await store.publish("news", b"before"), 1)
        await self.eventually(lambda: got == [b"before"])

        kill()
        started = reactor.seconds()
        with self.assertRaises(VolatileUnavailable):
            await store.get("k")
        self.assertLess(reactor.seconds() - started, 2.0)
        # subscribing while down fails in time but stays wanted
        later = []
        started = reactor.seconds()
        with self.assertRaises(VolatileUnavailable):
            await store.subscribe("later", lambda c, m: later.append(m))
        self.assertLess(reactor.seconds() - started, 2.0)

        self.startRedis(port)
        await self.waitListening(port)
        await self.poll(lambda: store.set("k", b"back"))
        self.assertEqual(await store.get("k"), b"back")

        fresh = self.makeStore(port)

        async def delivered(channel):
            if await fresh.publish(channel, b"after") != 1:
                raise VolatileUnavailable("not resubscribed yet")

        await self.poll(lambda: delivered("news"))
        await self.poll(lambda: delivered("later"))
        await self.eventually(lambda: got == [b"before", b"after"] and later == [b"after"])


class _Silent(Protocol):
    """A server that reads everything and never answers."""

    def connectionMade(self):
        self.received = b""
        self.lost = Deferred()
        self.factory.connections.append(self)

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost.callback(None)


def storeOnSilentServer(testCase, keepalive):
    """
    @return: (connections, store): an unopened L{RedisStore} (one pool
        connection) pointed at a local server that never answers, and the
        list of L{_Silent} connections that server accepts; the store, the
        connections and the server are closed at cleanup.
    """
    factory = Factory.forProtocol(_Silent)
    factory.connections = []
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    store = RedisStore(
        reactor, "127.0.0.1", port.getHost().port, timeout=0.2, keepalive=keepalive,
        poolsize=1, initialDelay=0.05, maxDelay=0.1,
    )

    async def cleanup():
        await store.close()
        for c in factory.connections:
            c.transport.abortConnection()
        await gatherResults([c.lost for c in factory.connections])
        await port.stopListening()

    testCase.addCleanup(lambda: Deferred.fromCoroutine(cleanup()))
    return factory.connections, store


async def waitUntil(predicate, tries=300):
    """Check C{predicate()} every 10 ms until it holds or C{tries} checks have failed."""
    for _ in range(tries):
        if predicate():
            return
        await deferLater(reactor, 0.01, lambda: None)


class RedisKeepaliveTests(TestCase):
    """The pub/sub connection notices a peer that stopped answering."""

    async def test_pingsKeepHealthyConnection(self):
        """
        Keepalive PINGs answered in time keep the same pub/sub connection, which still delivers.
        """
        url, prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)
        store = RedisStore(
            reactor, prefix=prefix, timeout=0.5, keepalive=0.05, **parseRedisURL(url)
        )
        store.open()
        self.addCleanup(store.close)
        got = []
        await store.subscribe("c", lambda c, m: got.append(m))
        connection = store.subscriber.connection
        await deferLater(reactor, 0.4, lambda: None)
        self.assertIs(store.subscriber.connection, connection)
        self.assertEqual(await store.publish("c", b"x"), 1)
        await waitUntil(lambda: got, tries=100)
        self.assertEqual(got, [b"x"])

    async def test_unansweredPingReconnects(self):
        """A PING left unanswered drops the pub/sub connection and a new one is made."""
        connections, store = storeOnSilentServer(self, keepalive=0.1)
        store.open()

        def pinged():
            return [c for c in connections if b"PING" in c.received]

        await waitUntil(lambda: len(pinged()) >= 2)
        self.assertGreaterEqual(len(pinged()), 2)


class RedisOpenTests(TestCase):
    """A RedisStore connects to nothing until open()."""

    async def test_connectsOnlyOnOpen(self):
        """
        Constructing a RedisStore makes no connection; open() makes the
        pool's and the pub/sub connection.
        """
        connections, store = storeOnSilentServer(self, keepalive=None)
        await deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(connections, [])
        store.open()
        await waitUntil(lambda: len(connections) >= 2)
        self.assertEqual(len(connections), 2)


class ProtocolTests(TestCase):
    """The pool's protocol encodes and passes replies on as txredisapi's own does."""

    def test_commands_encoded_alike(self):
        """
        The pool protocol frames every command exactly as txredisapi's own does, odd buffers
        included.
        """
        from mmoshard.store.redis import PoolProtocol

        ours = PoolProtocol(charset=None, convertNumbers=False)
        theirs = txredisapi.HiredisProtocol(charset=None, convertNumbers=False)
        for args in [(b"EVALSHA", b"ab12", b"2", b"k1", b"k\xc3\xa9", b"1.5", b""),
                     (b"GET", bytearray(b"k")), ("SELECT", 3), (b"SET", "k", 1.5), (),
                     # A buffer whose len() is not its byte count must not be
                     # framed by len(): a misframed command desyncs the stream.
                     (b"SET", b"k", memoryview(array.array("i", [1, 2])))]:
            self.assertEqual(ours._build_command(*args), theirs._build_command(*args), args)

    def test_replies_unchanged(self):
        """
        The pool protocol passes replies on unchanged without conversion, and converts like
        txredisapi when asked.
        """
        from mmoshard.store.redis import PoolProtocol

        ours = PoolProtocol(charset=None, convertNumbers=False)
        theirs = txredisapi.HiredisProtocol(charset=None, convertNumbers=False)
        for reply in [b"ok 1 0 x", [b"a", [b"b", 3]], 7, None, b"", b"1.5", [b"12"]]:
            self.assertEqual(ours.tryConvertData(reply), theirs.tryConvertData(reply))
        converting = PoolProtocol(charset="utf-8", convertNumbers=True)
        self.assertEqual(converting.tryConvertData([b"12", b"x"]), [12, "x"])
