"""An in-process world on a Clock: the real session manager, memory store, synchronous SQLite, simulated TCP peers."""

import sqlite3

import attrs

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.config import parseConfig
from mmoshard.directory import Directory
from mmoshard.interfaces import (
    IDirectory, ILocator, IMatchResults, IMessageRouter, IParties, ISQLStore, ITokenVerifier,
    IVolatileStore, IZoneChannels,
)
from mmoshard.locator import StoreLocator
from mmoshard.plugins.world import world as worldRole
from mmoshard.node import Node
from mmoshard.store.sql import Cursor, migrationsAvailable
from mmoshard.store.volatile import MemoryStore
from mmoshard.tokens import TokenVerifier
from mmoshard.wire.tcp import SessionTCPFactory
from mmoshard.wire.test.helpers import KEY, TCPPeer, makeManager, token
from mmoshard.world.test.dbfixture import insertCharacter


@implementer(ISQLStore)
class SyncSQL:
    """ISQLStore on one in-memory SQLite connection, run synchronously: Clock-friendly."""

    dialect = "sqlite"

    def __init__(self):
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute("PRAGMA foreign_keys = ON")
        for m in migrationsAvailable("sqlite"):
            for statement in m.statements():
                self.conn.execute(statement)
        self.conn.commit()
        self.down = False
        self.transactions = 0
        # While holding, interactions wait here (a hung database) until unhold().
        self.holding = False
        self.held = []

    def open(self):
        """Nothing to start: the connection is the constructor's, a test's convenience."""

    def runInteraction(self, func, *args, **kwargs):
        if self.holding:
            d = Deferred()
            self.held.append((d, func, args, kwargs))
            return d
        return self._run(func, *args, **kwargs)

    def unhold(self):
        """Stop holding: run what waits, as the database is now (C{down} or not)."""
        self.holding = False
        held, self.held = self.held, []
        for d, func, args, kwargs in held:
            self._run(func, *args, **kwargs).chainDeferred(d)

    def _run(self, func, *args, **kwargs):
        if self.down:
            from mmoshard.store.errors import SQLUnavailable

            return fail(SQLUnavailable("database down (test)"))
        self.transactions += 1
        try:
            result = func(Cursor(self.conn.cursor(), "sqlite"), *args, **kwargs)
        except BaseException:
            self.conn.rollback()
            return fail(Failure())
        self.conn.commit()
        return succeed(result)

    def runQuery(self, sql, params=()):
        return self.runInteraction(lambda c: c.execute(sql, params).fetchall())

    def ping(self):
        return succeed(None)

    def close(self):
        return succeed(None)

    def makeCharacter(self, accountId, name, zone="", x=0.0, y=0.0, z=0.0):
        d = self.runInteraction(insertCharacter, accountId, name, zone, x, y, z)
        return d.result

    def row(self, cid):
        return self.conn.execute(
            "SELECT zone, x, y, z, level, exp FROM characters WHERE id = ?", (cid,)).fetchone()


@implementer(IZoneChannels)
class FakeChannels:
    def __init__(self):
        self.calls = []

    def joinZone(self, characterId, zoneId):
        self.calls.append(("join", characterId, zoneId))
        return succeed(None)

    def leaveZone(self, characterId, zoneId):
        self.calls.append(("leave", characterId, zoneId))
        return succeed(None)


class WorldHarness:
    """One world process in memory. Several share a store and database through C{peerOf}."""

    def __init__(self, testCase, nodeId="world-a", clock=None, backend=None, sql=None,
                 channels=None, game=None, parties=None, templates=None, offered=None,
                 matchResults=None, **world):
        """
        @param game: a L{GameData} the world fights with instead of the one
            its [world] files load (tests' own numbers).
        @param templates: instance templates (id -> InstanceSpec) instead of
            the [world] ones (tests' own); C{offered}: those of them this
            process offers (None: all).
        @param parties: an L{IParties} the world reads parties from (None: everyone solo).
        @param matchResults: the L{IMatchResults} arena outcomes go to (None: none).
        @param world: the [world] table.
        """
        self.testCase = testCase
        self.clock = clock or Clock()
        if clock is None:
            self.clock.advance(1_000_000)
        raw = {
            "secrets": {"token_key": KEY},
            "listen": {"tcp": "", "websocket": "", "http": "", "admin": ""},
            "session": {"resume_grace": 5.0, "heartbeat": 100.0, "heartbeat_timeout": 300.0},
            "world": world,
        }
        config = parseConfig(raw, plugins=[worldRole], roles=["world"], nodeId=nodeId, env={})
        if game is not None:
            config.roles["world"] = attrs.evolve(config.roles["world"], game=game)
        if templates is not None:
            config.roles["world"] = attrs.evolve(
                config.roles["world"], templates=templates,
                instances=None if offered is None else tuple(offered))
        node = self.node = Node(config, self.clock, roles=[worldRole])
        self.volatile = MemoryStore(self.clock, "t:", backend=backend)
        self.volatile.open()
        node.provide(IVolatileStore, self.volatile)
        node.provide(ITokenVerifier, TokenVerifier(KEY, self.volatile, self.clock))
        self.sql = sql or SyncSQL()
        node.provide(ISQLStore, self.sql)
        self.directory = Directory(self.volatile, self.clock, nodeId, ["world"], 5.0, 15.0)
        self.directory.endpoints = {"tcp": f"{nodeId}.example:7000"}
        node.provide(IDirectory, self.directory)
        if channels is not None:
            node.provide(IZoneChannels, channels)
        if parties is not None:
            node.provide(IParties, parties)
        if matchResults is not None:
            node.provide(IMatchResults, matchResults)
        # As the node core provides it (not refreshing: tests stay within its TTL).
        self.locator = StoreLocator(self.volatile, self.clock, nodeId, 15.0)
        node.provide(ILocator, self.locator)
        self.manager = makeManager(node)
        node.provide(IMessageRouter, self.manager)
        testCase.successResultOf(Deferred.fromCoroutine(self.manager.start()))
        # Built by the role's own factory, as the node builds it.
        self.world = worldRole.makeService(node.contextFor(worldRole))
        testCase.successResultOf(self.world.startService())
        testCase.successResultOf(Deferred.fromCoroutine(self.directory.beat()))
        self.tcpFactory = SessionTCPFactory(self.manager)
        self.lastId = 100  # the id of the last request()

    @property
    def backend(self):
        return self.volatile.backend

    def peerOf(self, nodeId, **world):
        """Another world process sharing this one's clock, store and database."""
        return WorldHarness(self.testCase, nodeId, self.clock, self.backend, self.sql, **world)

    def where(self, cid):
        """@return: the L{mmoshard.locator.Location} of C{cid}, as any node reads it."""
        return self.testCase.successResultOf(self.locator.where(cid))

    def client(self, accountId):
        peer = TCPPeer(self, "10.0.0.%d" % (accountId % 250 + 1))
        peer.send({"t": "hello", "id": 1, "token": token(self.clock, accountId),
                   "client_version": "1.0", "platform": "test"})
        [welcome] = peer.received()
        assert welcome["t"] == "welcome", welcome
        peer.welcome = welcome
        peer.accountId = accountId
        return peer

    def resume(self, lost):
        """A new connection resuming the session of peer C{lost}."""
        peer = TCPPeer(self, "10.0.0.%d" % (lost.accountId % 250 + 1))
        peer.send({"t": "resume", "id": 1, "resume_token": lost.welcome["resume_token"],
                   "last_seq": 0})
        peer.accountId = lost.accountId
        return peer

    def request(self, peer, type, **body):
        """Send request C{type} (its id: L{lastId}) and @return: its answer, advancing the clock a little until it comes."""
        self.lastId += 1
        body.update(t=type, id=self.lastId)
        peer.send(body)
        for _ in range(10):
            for m in peer.received():
                if m.get("id") == self.lastId:
                    return m
            self.clock.advance(0.01)  # batched saves flush after a short delay
        raise AssertionError(f"no reply to {type}")

    def enter(self, peer, cid, **extra):
        return self.request(peer, "world.enter", character_id=cid, **extra)

    def advance(self, seconds=0.1, steps=1):
        # A hair more than asked: a Clock advanced by 0.1 repeatedly drifts
        # below the loop's deadlines through float rounding.
        for _ in range(steps):
            self.clock.advance(seconds + 1e-6)

    def stop(self):
        return self.world.stopService()


def events(peer, type):
    return [m for m in peer.received() if m["t"] == type]
