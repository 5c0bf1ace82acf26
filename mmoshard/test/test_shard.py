"""Tests for the Shard: registry wiring between roles, ordered start/stop, directory expiry, admin site."""

import json

import treq
from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from mmoshard.config import parseConfig
from mmoshard.directory import Directory
from mmoshard.interfaces import IAdminSite, IDirectory, ISQLStore, IVolatileStore
from mmoshard.role import Role
from mmoshard.shard import MissingProvider, buildShard
from mmoshard.store.volatile import MemoryStore
from mmoshard.testing import freePort


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
    def __init__(self, shard):
        shard.provide(IGreeting, Greeting())

    def startService(self):
        events.append("greeter started")
        super().startService()

    def stopService(self):
        events.append("greeter stopped")
        return super().stopService()


class ListenerRoleService(Service):
    """Needs IGreeting, which another role provides; never imports it."""

    def __init__(self, shard):
        self.shard = shard
        self.greeting = None

    def startService(self):
        # The core stores are up before any role starts.
        assert self.shard.sql is not None and self.shard.volatile is not None
        self.greeting = self.shard.lookup(IGreeting).greet("world")
        events.append("listener started")
        super().startService()

    def stopService(self):
        events.append("listener stopped")
        d = Deferred()
        # A role may take time to drain; the shard waits for it.
        reactor.callLater(0.05, d.callback, None)
        return d


GREETER = Role(
    name="greeter", factory=GreeterService, provides=(IGreeting,),
    transports=frozenset({"http"}),
)
LISTENER = Role(name="listener", factory=ListenerRoleService, requires=(IGreeting,))


def makeConfig(testCase, roles, **sections):
    sections.setdefault("sql", {"url": "sqlite:///" + testCase.mktemp() + ".db"})
    sections.setdefault("shard", {"id": "test-shard", "var_dir": testCase.mktemp()})
    sections.setdefault(
        "listen",
        {"http": "tcp:0:interface=127.0.0.1", "tcp": "", "websocket": "",
         "admin": "tcp:0:interface=127.0.0.1"},
    )
    return parseConfig(sections, roles, env={})


class ShardServiceTests(TestCase):
    async def startShard(self, roles, **sections):
        config = makeConfig(self, roles, **sections)
        root = buildShard(config, reactor, roles)
        root.startService()
        self.addCleanup(root.stopService)
        await root.started
        return root

    async def adminGet(self, shard, path):
        port = shard.listeningPorts["admin"].getHost().port
        response = await treq.get(f"http://127.0.0.1:{port}{path}", persistent=False)
        return response.code, await response.content()

    async def test_registry_wiring_and_order(self):
        """A role finds another's provider through the registry; start and stop are ordered."""
        del events[:]
        root = await self.startShard([GREETER, LISTENER])
        shard = root.shard
        listener = root.roleServices[1]
        self.assertEqual(listener.greeting, "hello world")
        verifyObject(ISQLStore, shard.lookup(ISQLStore))
        verifyObject(IVolatileStore, shard.lookup(IVolatileStore))
        verifyObject(IDirectory, shard.lookup(IDirectory))
        verifyObject(IAdminSite, shard.lookup(IAdminSite))
        self.assertRaises(MissingProvider, shard.lookup, INobody)
        # Without chat here, zone channels go through the volatile store.
        from mmoshard.interfaces import IZoneChannels
        from mmoshard.zonechat import StoreZoneChannels

        self.assertIsInstance(shard.lookup(IZoneChannels), StoreZoneChannels)
        self.assertIsNone(shard.query(INobody))
        await root.stopService()
        self.assertEqual(
            events,
            ["greeter started", "listener started", "listener stopped", "greeter stopped"],
        )
        self.assertFalse(shard.ready)

    async def test_admin_endpoints(self):
        root = await self.startShard([GREETER])
        shard = root.shard
        code, body = await self.adminGet(shard, "/healthz")
        self.assertEqual(code, 200)
        health = json.loads(body)
        self.assertEqual(health["shard_id"], "test-shard")
        self.assertEqual(health["roles"], ["greeter"])
        self.assertGreaterEqual(health["uptime_s"], 0)

        code, body = await self.adminGet(shard, "/readyz")
        self.assertEqual((code, json.loads(body)["down"]), (200, []))

        code, body = await self.adminGet(shard, "/metrics")
        self.assertEqual(code, 200)
        self.assertIn(b"mmoshard_uptime_seconds", body)
        self.assertIn(b"process_cpu_seconds_total", body)

        code, body = await self.adminGet(shard, "/nope")
        self.assertEqual(json.loads(body)["error"]["code"], "request.not_found")

    async def test_readyz_names_what_is_down(self):
        """With Redis unreachable, /readyz is 503 and names the volatile store."""
        root = await self.startShard(
            [GREETER],
            volatile={"url": f"redis://127.0.0.1:{freePort()}/0", "timeout": 0.3},
            secrets={"token_key": "x" * 32},
        )
        code, body = await self.adminGet(root.shard, "/readyz")
        body = json.loads(body)
        self.assertEqual(code, 503)
        self.assertEqual(body["down"], ["tokens", "volatile"])
        self.assertEqual(body["checks"]["tokens"], "revocations not loaded yet")
        self.assertIn("down", body["checks"]["volatile"])
        self.assertEqual(body["checks"]["sql"], "ok")

    async def test_http_listener_only_when_used(self):
        """A process whose roles use no HTTP opens no public site."""
        root = await self.startShard([])
        self.assertNotIn("http", root.shard.listeningPorts)
        self.assertIn("admin", root.shard.listeningPorts)


class DirectoryTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore(self.clock, prefix="t:")
        self.addCleanup(self.store.close)

    def directory(self, shardId, roles, load=0):
        d = Directory(self.store, self.clock, shardId, roles, heartbeat=5.0, ttl=15.0)
        d.endpoints = {"tcp": f"{shardId}:7000"}
        d.addLoadSource("sessions", lambda: load)
        d.publish("zones", [f"{shardId}-zone"])
        return d

    async def test_entries_listed_and_expire(self):
        a = self.directory("a", ["chat"], load=10)
        b = self.directory("b", ["chat", "world"], load=2)
        a.start()
        b.start()
        entries = await a.list()
        self.assertEqual([e.shard_id for e in entries], ["a", "b"])
        self.assertEqual(entries[1].endpoints, {"tcp": "b:7000"})
        self.assertEqual(entries[1].info, {"zones": ["b-zone"]})
        self.assertEqual(entries[1].totalLoad, 2)
        chat = await a.endpointsFor("chat")
        self.assertEqual([e.shard_id for e in chat], ["b", "a"], "least loaded first")
        self.assertEqual([e.shard_id for e in await a.endpointsFor("world")], ["b"])

        # b dies: its heartbeat stops without a goodbye.
        b._loop.stop()
        for _ in range(2):
            self.clock.advance(5.0)
        self.assertEqual([e.shard_id for e in await a.list()], ["a", "b"])
        self.clock.advance(5.5)  # past b's last beat + ttl
        self.assertEqual([e.shard_id for e in await a.list()], ["a"])
        await a.stop()
        self.assertEqual(await b.list(), [])

    async def test_graceful_stop_removes_entry_at_once(self):
        a = self.directory("a", ["auth"])
        a.start()
        await a.stop()
        self.assertEqual(await self.directory("x", []).list(), [])


class AllRolesTests(TestCase):
    async def test_every_role_starts_embedded_and_documents_its_messages(self):
        """All installed roles in one process on the embedded default; every message type they register is in docs/."""
        from mmoshard.interfaces import IMessageRouter
        from mmoshard.plugins import discoverRoles
        from mmoshard.wire.docs import undocumentedTypes

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
        root = buildShard(config, reactor, roles)
        root.startService()
        self.addCleanup(root.stopService)
        await root.started
        shard = root.shard
        self.assertTrue(shard.ready)
        self.assertEqual(
            sorted(shard.listeningPorts), ["admin", "http", "tcp", "websocket"]
        )
        router = shard.lookup(IMessageRouter)
        namespaces = {t.split(".")[0] for t in router.messageTypes if "." in t}
        self.assertTrue({"chat", "world"} <= namespaces, namespaces)
        self.assertEqual(undocumentedTypes(router.messageTypes), [])
        # The chat role's own zone channels win over the core's store provider.
        from mmoshard.chat.channels import Channels
        from mmoshard.interfaces import IZoneChannels

        self.assertIsInstance(shard.lookup(IZoneChannels), Channels)
