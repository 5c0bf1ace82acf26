"""StoreLocator's contract on the memory store and on real Redis: bindings, places, several nodes, TTLs, refreshes, withdrawal; and GET /players/{character_id}."""

import json

from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase
from twisted.web.test.requesthelper import DummyRequest
from zope.interface.verify import verifyObject

from mmoshard.interfaces import ILocator
from mmoshard.locator import BATCH, Location, StoreLocator, entryKey, indexKey
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.volatile import MemoryStore, MemoryView, makeVolatileStore
from mmoshard.testing import requireRedis


class LocatorContract:
    """
    What every backend must do.  A backend gives C{newStore()} (each node
    its own connection to one shared store), C{ttl}, and C{await
    self.wait(seconds)} letting that much time pass for TTLs and refreshes.
    """

    ttl = 1.0

    def locator(self, nodeId, start=True):
        """@return: a StoreLocator of node C{nodeId}, refreshing (C{start}) or not, stopped at cleanup."""
        loc = StoreLocator(self.newStore(), self.clock, nodeId, self.ttl)
        if start:
            loc.start()
            self.addCleanup(loc.stop)
        return loc

    async def test_interface(self):
        """StoreLocator provides ILocator."""
        verifyObject(ILocator, self.locator("n1"))

    async def test_unknown_character(self):
        """A character nobody bound or placed is nowhere: where answers None."""
        self.assertIsNone(await self.locator("n1").where(404))

    async def test_bind_place_and_forget(self):
        """A bound and placed character is found with its session, node, zone and instance; unbinding and unplacing forget it."""
        loc = self.locator("n1")
        await loc.bind(7, "chat", "s-chat")
        await loc.bind(7, "world", "s-world")
        await loc.place(7, "deadmines", 12)
        self.assertEqual(await loc.where(7), Location(
            7, (("chat", "n1", "s-chat"), ("world", "n1", "s-world")), "n1", "deadmines", 12))
        await loc.place(7, "greenvale")
        where = await loc.where(7)
        self.assertEqual((where.zone, where.instance_id), ("greenvale", None))
        await loc.unbind(7, "world", "s-world")
        await loc.unplace(7)
        self.assertEqual(await loc.where(7), Location(7, (("chat", "n1", "s-chat"),)))
        await loc.unbind(7, "chat", "s-chat")
        self.assertIsNone(await loc.where(7))

    async def test_unbind_only_current_session(self):
        """Unbinding a session that a newer one replaced keeps the newer binding."""
        loc = self.locator("n1")
        await loc.bind(7, "chat", "old")
        await loc.bind(7, "chat", "new")
        await loc.unbind(7, "chat", "old")
        self.assertEqual((await loc.where(7)).session("chat"), ("n1", "new"))

    async def test_changes_land_in_order(self):
        """Changes made back to back without waiting end as the last one left them."""
        loc = self.locator("n1")
        calls = []
        for i in range(20):
            calls.append(loc.bind(7, "world", f"s{i}"))
            calls.append(loc.place(7, f"zone{i}"))
            if i % 3 == 0:
                calls.append(loc.unplace(7))
        calls.append(loc.unbind(7, "world", "s19"))
        await DeferredList(calls, fireOnOneErrback=True)
        self.assertEqual(await loc.where(7), Location(7, (), "n1", "zone19", None))

    async def test_several_nodes(self):
        """Each node's bindings and place are seen together; per kind the newest wins; a node forgets only its own."""
        a, b = self.locator("a"), self.locator("b")
        await a.bind(7, "chat", "ca")
        await b.bind(7, "world", "wb")
        await b.place(7, "greenvale")
        self.assertEqual(await a.where(7), Location(
            7, (("chat", "a", "ca"), ("world", "b", "wb")), "b", "greenvale", None))
        # A transfer: the new node places it before the old one forgets it.
        await self.wait(0.01)
        await a.bind(7, "world", "wa")
        await a.place(7, "ashfall")
        where = await b.where(7)
        self.assertEqual((where.session("world"), where.node, where.zone),
                         (("a", "wa"), "a", "ashfall"))
        await b.unbind(7, "world", "wb")
        await b.unplace(7)
        self.assertEqual(await b.where(7), Location(
            7, (("chat", "a", "ca"), ("world", "a", "wa")), "a", "ashfall", None))
        # b's unbind of a's session changes nothing.
        await b.unbind(7, "chat", "ca")
        self.assertEqual((await b.where(7)).session("chat"), ("a", "ca"))

    async def test_dead_node_vanishes_within_ttl(self):
        """Entries of a node that stopped refreshing are gone within the TTL; a live node's stay past it."""
        live, dead = self.locator("live"), self.locator("dead", start=False)
        await live.bind(1, "chat", "c1")
        await dead.bind(1, "world", "w1")
        await dead.place(1, "greenvale")
        await dead.bind(2, "world", "w2")
        await self.wait(self.ttl * 1.6)
        self.assertEqual(await live.where(1), Location(1, (("chat", "live", "c1"),)))
        self.assertIsNone(await live.where(2))
        await self.wait(self.ttl * 1.6)
        self.assertEqual(await live.where(1), Location(1, (("chat", "live", "c1"),)))

    async def test_refresh_rewrites_lost_entries(self):
        """An entry the store lost (a Redis restart, a flush) is written again by the next refresh."""
        loc = self.locator("n1")
        await loc.bind(3, "chat", "c3")
        await loc.place(3, "greenvale")
        probe = self.newStore()
        await probe.delete(entryKey(3, "n1"), indexKey(3))
        self.assertIsNone(await loc.where(3))
        await loc.refresh()
        await self.wait(0.05)
        self.assertEqual(await loc.where(3), Location(3, (("chat", "n1", "c3"),), "n1", "greenvale"))

    async def test_stop_withdraws_own_entries(self):
        """A node that stops removes its entries at once; another node's stay."""
        a = self.locator("a")
        b = StoreLocator(self.newStore(), self.clock, "b", self.ttl)
        b.start()
        await a.bind(5, "chat", "ca")
        await b.bind(5, "world", "wb")
        await b.bind(6, "world", "w6")
        await b.stop()
        self.assertEqual(await a.where(5), Location(5, (("chat", "a", "ca"),)))
        self.assertIsNone(await a.where(6))


class CountingStore:
    """A volatile store wrapper counting script calls by name, failing them while C{failing}."""

    def __init__(self, store):
        self.store = store
        self.calls = []
        self.failing = False

    def groupBySlot(self, keys):
        return self.store.groupBySlot(keys)

    def evalScript(self, script, keys, args):
        self.calls.append(script.name)
        if self.failing:
            raise VolatileUnavailable("down for the test")
        return self.store.evalScript(script, keys, args)


class MemoryLocatorTests(LocatorContract, TestCase):
    """The contract on the memory store, nodes sharing one MemoryView, on a Clock."""

    def setUp(self):
        self.clock = Clock()
        self.view = MemoryView(self.clock)
        self.addCleanup(self.view.close)

    def newStore(self):
        store = MemoryStore(self.clock, prefix="t:", backend=self.view)
        store.open()
        return store

    async def wait(self, seconds):
        step = self.ttl / 10
        left = seconds
        while left > 1e-9:
            self.clock.advance(min(step, left))
            left -= step

    async def test_one_script_per_batch(self):
        """A refresh of many characters is one script call per BATCH of them."""
        counting = CountingStore(self.newStore())
        loc = StoreLocator(counting, self.clock, "n1", self.ttl)
        for cid in range(BATCH * 2 + 1):
            await loc.place(cid, "greenvale")
        del counting.calls[:]
        await loc.refresh()
        self.assertEqual(counting.calls, ["locator_refresh"] * 3)

    async def test_failed_write_retried_by_refresh(self):
        """A write that failed (store down) does not fail the caller and lands at the next refresh."""
        counting = CountingStore(self.newStore())
        loc = StoreLocator(counting, self.clock, "n1", self.ttl)
        counting.failing = True
        await loc.bind(9, "chat", "c9")
        self.assertIsNone(await self.locator("n2").where(9))
        # The refresh while the store is still down changes nothing and raises nothing.
        await loc.refresh()
        counting.failing = False
        await loc.refresh()
        self.assertEqual(await loc.where(9), Location(9, (("chat", "n1", "c9"),)))


class RedisLocatorTests(LocatorContract, TestCase):
    """The contract on the test Redis (real TTLs, a connection pool per node), on the real reactor."""

    clock = reactor

    def setUp(self):
        self.url, self.prefix, cleaner = requireRedis()
        self.addCleanup(cleaner)

    def newStore(self):
        store = makeVolatileStore(self.url, reactor, self.prefix, timeout=5.0)
        store.open()
        self.addCleanup(store.close)
        return store

    async def wait(self, seconds):
        await deferLater(reactor, seconds, lambda: None)


class PlayersRouteTests(TestCase):
    """GET /players/{character_id} on the admin site."""

    def setUp(self):
        from mmoshard.web.admin import CORE_ADMIN_ERRORS, CoreAdminAPI
        from mmoshard.web.routes import Router

        self.clock = Clock()
        store = MemoryStore(self.clock, prefix="t:")
        store.open()
        self.locator = StoreLocator(store, self.clock, "n1", 15.0)
        api = CoreAdminAPI(None, None, None, None, self.locator)
        self.router = Router(api, CORE_ADMIN_ERRORS)

    def get(self, path):
        request = DummyRequest(path.strip("/").encode().split(b"/"))
        request.method = b"GET"
        request.channel = None
        raw = self.router.render(request)
        if not isinstance(raw, bytes):
            raw = b"".join(request.written)
        return request.responseCode or 200, json.loads(raw)

    def test_found(self):
        """A known character's location comes back as JSON: node, zone, instance and its sessions."""
        self.successResultOf(self.locator.bind(42, "world", "s1"))
        self.successResultOf(self.locator.place(42, "deadmines", 3))
        code, body = self.get("/players/42")
        self.assertEqual(code, 200)
        self.assertEqual(body, {"character_id": 42, "node": "n1", "zone": "deadmines",
                                "instance_id": 3,
                                "sessions": [{"kind": "world", "node": "n1", "session_id": "s1"}]})

    def test_not_found(self):
        """A character no live node knows is a 404 player.not_found."""
        code, body = self.get("/players/43")
        self.assertEqual(code, 404)
        self.assertEqual(body["error"]["code"], "player.not_found")

    def test_openapi(self):
        """The admin site's OpenAPI document lists the route with its 404."""
        from mmoshard.web.routes import mountRouter
        from mmoshard.web.site import AdminSite

        site = AdminSite()
        mountRouter(site, self.router)
        doc = site.document(self.router)
        op = doc["paths"]["/players/{character_id}"]["get"]
        self.assertIn("404", op["responses"])
        self.assertEqual(set(op["responses"]["200"]["content"]["application/json"]["schema"]
                             ["properties"]),
                         {"character_id", "node", "zone", "instance_id", "sessions"})
