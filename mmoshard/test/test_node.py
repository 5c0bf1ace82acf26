"""Tests for the Node: registry wiring between roles, ordered start/stop, directory expiry, admin site."""

import json

import treq
from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from mmoshard.config import parseConfig
from mmoshard.directory import Directory
from mmoshard.interfaces import IAdminSite, IDirectory, ISQLStore, IVolatileStore
from mmoshard.role import Role
from mmoshard.node import MissingProvider, buildNode
from mmoshard.testing import freePort, openMemoryStore
from mmoshard.testservers import PrivateRedis


class INobody(Interface):
    """Provided by nothing."""


class IGreeting(Interface):
    """Provided by the 'greeter' test role."""

    def greet(name):
        """@return: a greeting str."""


@implementer(IGreeting)
class Greeting:
    def greet(self, name):
        return f"hello {name}"


events = []


class GreeterService(Service):
    """Provides IGreeting to the other roles of its node."""

    def __init__(self, ctx):
        ctx.provide(IGreeting, Greeting())

    def startService(self):
        events.append("greeter started")
        super().startService()

    def stopService(self):
        events.append("greeter stopped")
        return super().stopService()


class ListenerRoleService(Service):
    """Needs IGreeting, which another role provides; never imports it."""

    def __init__(self, ctx):
        self.greeter = ctx.require(IGreeting)
        self.sql = ctx.require(ISQLStore)
        self.greeting = None

    async def _start(self):
        # The core stores are up before any role starts.
        await self.sql.runQuery("SELECT 1")
        self.greeting = self.greeter.greet("world")
        events.append("listener started")

    def startService(self):
        super().startService()
        return Deferred.fromCoroutine(self._start())

    def stopService(self):
        events.append("listener stopped")
        d = Deferred()
        # A role may take time to drain; the node waits for it.
        reactor.callLater(0.05, d.callback, None)
        return d


class GreedyService(Service):
    """Asks for an interface its role never declared."""

    def __init__(self, ctx):
        ctx.require(IVolatileStore)


GREETER = Role(
    name="greeter", factory=GreeterService, provides=(IGreeting,),
    transports=frozenset({"http"}),
)
LISTENER = Role(name="listener", factory=ListenerRoleService,
                requires=(IGreeting, ISQLStore))
GREEDY = Role(name="greedy", factory=GreedyService, requires=(ISQLStore,))


def makeConfig(testCase, roles, **sections):
    sections.setdefault("sql", {"url": "sqlite:///" + testCase.mktemp() + ".db"})
    sections.setdefault("node", {"id": "test-node", "var_dir": testCase.mktemp()})
    sections.setdefault(
        "listen",
        {"http": "tcp:0:interface=127.0.0.1", "tcp": "", "websocket": "",
         "admin": "tcp:0:interface=127.0.0.1"},
    )
    return parseConfig(sections, roles, env={})


class NodeServiceTests(TestCase):
    async def startNode(self, roles, **sections):
        config = makeConfig(self, roles, **sections)
        root = buildNode(config, reactor, roles)
        root.startService()
        self.addCleanup(root.stopService)
        await root.started
        return root

    async def adminGet(self, node, path):
        port = node.listeningPorts["admin"].getHost().port
        response = await treq.get(f"http://127.0.0.1:{port}{path}", persistent=False)
        return response.code, await response.content()

    async def test_registry_wiring_and_order(self):
        """A role is given another role's provider, built first even when listed after it; start and stop are ordered."""
        del events[:]
        root = await self.startNode([LISTENER, GREETER])
        node = root.node
        self.assertEqual([svc.name for svc in root.roleServices], ["role:greeter", "role:listener"])
        listener = root.roleServices[1]
        self.assertEqual(listener.greeting, "hello world")
        verifyObject(ISQLStore, node.lookup(ISQLStore))
        verifyObject(IVolatileStore, node.lookup(IVolatileStore))
        verifyObject(IDirectory, node.lookup(IDirectory))
        verifyObject(IAdminSite, node.lookup(IAdminSite))
        self.assertRaises(MissingProvider, node.lookup, INobody)
        # Without chat here, zone channels go through the volatile store.
        from mmoshard.interfaces import IZoneChannels
        from mmoshard.zonechat import StoreZoneChannels

        self.assertIsInstance(node.lookup(IZoneChannels), StoreZoneChannels)
        self.assertIsNone(node.query(INobody))
        await root.stopService()
        self.assertEqual(
            events,
            ["greeter started", "listener started", "listener stopped", "greeter stopped"],
        )
        self.assertFalse(node.ready)

    def test_undeclared_interface_refused(self):
        """A role's factory cannot reach an interface its Role does not declare."""
        from mmoshard.role import UndeclaredInterface

        config = makeConfig(self, [GREEDY])
        self.assertRaises(UndeclaredInterface, buildNode, config, reactor, [GREEDY])

    async def test_admin_endpoints(self):
        """/healthz names the node and its roles, /readyz is 200, /metrics has process metrics, unknown paths get a JSON 404."""
        root = await self.startNode([GREETER])
        node = root.node
        code, body = await self.adminGet(node, "/healthz")
        self.assertEqual(code, 200)
        health = json.loads(body)
        self.assertEqual(health["node_id"], "test-node")
        self.assertEqual(health["roles"], ["greeter"])
        self.assertGreaterEqual(health["uptime_s"], 0)

        code, body = await self.adminGet(node, "/readyz")
        self.assertEqual((code, json.loads(body)["down"]), (200, []))

        code, body = await self.adminGet(node, "/metrics")
        self.assertEqual(code, 200)
        self.assertIn(b"mmoshard_uptime_seconds", body)
        self.assertIn(b"process_cpu_seconds_total", body)

        code, body = await self.adminGet(node, "/nope")
        self.assertEqual(json.loads(body)["error"]["code"], "request.not_found")

    async def test_readyz_names_what_is_down(self):
        """With Redis gone after start, /readyz is 503 and names the volatile store."""
        redis = await PrivateRedis(self).start()
        root = await self.startNode(
            [GREETER],
            volatile={"url": redis.url, "timeout": 0.3},
            secrets={"token_key": "x" * 32},
        )
        code, body = await self.adminGet(root.node, "/readyz")
        self.assertEqual(code, 200, body)
        await redis.stop()
        code, body = await self.adminGet(root.node, "/readyz")
        body = json.loads(body)
        self.assertEqual(code, 503)
        self.assertIn("volatile", body["down"])
        self.assertIn("down", body["checks"]["volatile"])
        self.assertEqual(body["checks"]["sql"], "ok")

    async def test_redis_down_at_start_fails_start(self):
        """With Redis unreachable at start, the start fails (exit code 1) naming the URL, and nothing listens."""
        url = f"redis://127.0.0.1:{freePort()}/0"
        config = makeConfig(self, [GREETER], volatile={"url": url, "timeout": 0.3},
                            secrets={"token_key": "x" * 32})
        root = buildNode(config, reactor, [GREETER])
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        root.startService()
        self.addCleanup(root.stopService)
        await root.started
        self.assertEqual(root.exitCode, 1)
        self.assertFalse(root.node.ready)
        [failed] = [e for e in logged if e.get("log_level") == LogLevel.critical]
        self.assertIn(f"volatile store {url} not answering", failed["why"])
        self.assertEqual(root.node.listeningPorts, {})

    async def test_http_listener_only_when_used(self):
        """A process whose roles use no HTTP opens no public site."""
        root = await self.startNode([])
        self.assertNotIn("http", root.node.listeningPorts)
        self.assertIn("admin", root.node.listeningPorts)


class DirectoryTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.store = openMemoryStore(self, self.clock)

    def directory(self, nodeId, roles, load=0):
        d = Directory(self.store, self.clock, nodeId, roles, heartbeat=5.0, ttl=15.0)
        d.endpoints = {"tcp": f"{nodeId}:7000"}
        d.addLoadSource("sessions", lambda: load)
        d.publish("zones", [f"{nodeId}-zone"])
        return d

    async def test_entries_listed_and_expire(self):
        """Directory entries are listed with endpoints, info and load (least loaded first per role) and drop out when their heartbeat stops."""
        a = self.directory("a", ["chat"], load=10)
        b = self.directory("b", ["chat", "world"], load=2)
        a.start()
        b.start()
        entries = await a.list()
        self.assertEqual([e.node_id for e in entries], ["a", "b"])
        self.assertEqual(entries[1].endpoints, {"tcp": "b:7000"})
        self.assertEqual(entries[1].info, {"zones": ["b-zone"]})
        self.assertEqual(entries[1].totalLoad, 2)
        chat = await a.endpointsFor("chat")
        self.assertEqual([e.node_id for e in chat], ["b", "a"], "least loaded first")
        self.assertEqual([e.node_id for e in await a.endpointsFor("world")], ["b"])

        # b dies: its heartbeat stops without a goodbye.
        b._loop.stop()
        for _ in range(2):
            self.clock.advance(5.0)
        self.assertEqual([e.node_id for e in await a.list()], ["a", "b"])
        self.clock.advance(5.5)  # past b's last beat + ttl
        self.assertEqual([e.node_id for e in await a.list()], ["a"])
        await a.stop()
        self.assertEqual(await b.list(), [])

    async def test_graceful_stop_removes_entry_at_once(self):
        """A node that stops gracefully leaves the directory at once, not when its TTL runs out."""
        a = self.directory("a", ["auth"])
        a.start()
        await a.stop()
        self.assertEqual(await self.directory("x", []).list(), [])


class AllRolesTests(TestCase):
    async def test_every_role_starts_embedded_and_documents_its_messages(self):
        """All installed roles in one process on the embedded default; every message type they register is in docs/."""
        from mmoshard.interfaces import IMessageRouter
        from mmoshard.plugins import discoverRoles
        from mmoshard.wire.test.docs import undocumentedTypes

        roles = discoverRoles()
        self.assertTrue({"auth", "chat", "version", "world"} <= {r.name for r in roles})
        config = makeConfig(
            self,
            roles,
            listen={
                "http": "tcp:0:interface=127.0.0.1",
                "tcp": "tcp:0:interface=127.0.0.1",
                "websocket": "tcp:0:interface=127.0.0.1",
                "admin": "tcp:0:interface=127.0.0.1",
            },
        )
        root = buildNode(config, reactor, roles)
        root.startService()
        self.addCleanup(root.stopService)
        await root.started
        node = root.node
        self.assertTrue(node.ready)
        self.assertEqual(
            sorted(node.listeningPorts), ["admin", "http", "tcp", "websocket"]
        )
        router = node.lookup(IMessageRouter)
        namespaces = {t.split(".")[0] for t in router.messageTypes if "." in t}
        self.assertTrue({"chat", "world"} <= namespaces, namespaces)
        self.assertEqual(undocumentedTypes(router.messageTypes), [])
        # The chat role's own zone channels win over the core's store provider.
        from mmoshard.chat.channels import Channels
        from mmoshard.interfaces import IZoneChannels

        self.assertIsInstance(node.lookup(IZoneChannels), Channels)
