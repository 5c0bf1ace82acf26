"""The shard of the rolling-restart run: two real twistd nodes of each role on MariaDB and Redis, and each restarted in turn."""

import math
import os
import time

import attrs
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.bots.instancestub import ROLE as STUB_ROLE
from mmoshard.bots.instancestub import writePlugin
from mmoshard.testing import TwistdProcess, checkoutRoot, freePort, repoRoot, writeConfig

# The zone every world node hosts (both: a draining node hands its players
# to the other, docs/operations.md "Draining a world node"), wolves in packs
# a few metres apart so hunters always find one, respawning quickly.
ZONE = "field"
SIZE = 400.0
PACKS = [(60.0 + 70.0 * i, 60.0 + 70.0 * j) for i in range(5) for j in range(5)]
CLASSES = ("warrior", "priest", "mage", "rogue", "ranger")  # one dungeon5 team in five bots


def zonesTOML():
    """The run's zones file: one open zone of C{SIZE} metres with 25 packs of young wolves."""
    lines = [f"[zones.{ZONE}]", f"size = [{SIZE}, {SIZE}]", "spawns = [[200.0, 0.0, 200.0]]",
             "aoi_radius = 50.0", "tick_rate = 10.0", "max_speed = 7.0",
             "graveyard = [200.0, 0.0, 200.0]", ""]
    for x, z in PACKS:
        lines += [f"[[zones.{ZONE}.packs]]", 'members = ["young_wolf", "young_wolf"]',
                  f"at = [{x}, {z}]", "spread = 4.0", "respawn = 5.0", ""]
    return "\n".join(lines)


@attrs.frozen
class NodeSpec:
    """One node of the shard: its id, roles and the role tables it adds to the common config."""

    id: str
    roles: tuple
    tables: dict = attrs.field(factory=dict)


def shardSpecs(tmp):
    """Two world nodes hosting the zone, two chat nodes, two matchmaking nodes (instances stubbed)."""
    etc = os.path.join(checkoutRoot(), "etc")
    zones = os.path.join(tmp, "zones.toml")
    with open(zones, "w") as f:
        f.write(zonesTOML())
    world = {"world": {
        "zones_file": zones, "npcs_file": os.path.join(etc, "npcs.toml"),
        "items_file": os.path.join(etc, "items.toml"), "instances_file": "",
        "abilities_file": os.path.join(etc, "abilities.toml"),
        "classes_file": os.path.join(etc, "classes.toml"),
        "lease_ttl": 5.0, "lease_refresh": 1.0, "save_interval": 2.0, "drain_deadline": 10.0}}
    mm = {"matchmaking": {"instances_file": "", "match_interval": 0.5, "lease_ttl": 3.0}}
    return [NodeSpec("world-a", ("world",), world), NodeSpec("world-b", ("world",), world),
            NodeSpec("chat-a", ("chat",)), NodeSpec("chat-b", ("chat",)),
            NodeSpec("mm-a", ("matchmaking", STUB_ROLE), mm),
            NodeSpec("mm-b", ("matchmaking", STUB_ROLE), mm)]


class Node:
    """One node: its config on disk (fixed ports, kept across restarts) and its current process."""

    def __init__(self, spec, path, tcp, admin):
        self.spec = spec
        self.path = path
        self.tcp = tcp
        self.admin = admin
        self.proc = None
        self.starts = 0

    @property
    def address(self):
        return f"tcp:127.0.0.1:{self.tcp}"


@attrs.frozen
class Restart:
    """What one restart of a node took: exit code, seconds to exit after SIGTERM, seconds to ready."""

    node: str
    exit_code: int
    stop_s: float
    start_s: float


class RollingCluster:
    """
    The shard's nodes as real C{twistd} processes on the given stores.
    L{start} starts them all; L{restart} stops one with SIGTERM, waits for
    its exit and starts it again on the same config and ports, until its
    C{/readyz} answers; L{roll} does that to every node in turn.
    """

    log = Logger()

    def __init__(self, reactor, tmp, sqlURL, redisURL, prefix, key, specs=None, session=None):
        self.reactor = reactor
        self.tmp = tmp
        self.pythonPath = writePlugin(os.path.join(tmp, "plugins")) + os.pathsep + repoRoot()
        self.nodes = {}
        common = {
            "sql": {"url": sqlURL, "pool_min": 1, "pool_max": 4},
            "volatile": {"url": redisURL, "prefix": prefix},
            "secrets": {"token_key": key},
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "session": {"resume_grace": 30.0, "max_per_ip": 100000, **(session or {})},
        }
        for spec in specs if specs is not None else shardSpecs(tmp):
            tcp, admin = freePort(), freePort()
            path = writeConfig(os.path.join(tmp, f"{spec.id}.toml"), {
                "node": {"id": spec.id, "roles": list(spec.roles),
                         "var_dir": os.path.join(tmp, spec.id)},
                "listen": {"tcp": f"tcp:{tcp}:interface=127.0.0.1", "websocket": "", "http": "",
                           "admin": f"tcp:{admin}:interface=127.0.0.1"},
                **common, **spec.tables})
            self.nodes[spec.id] = Node(spec, path, tcp, admin)

    def addresses(self, role):
        """@return: the session addresses of the nodes with C{role}, in node order."""
        return [n.address for n in self.nodes.values() if role in n.spec.roles]

    async def start(self):
        for node in self.nodes.values():
            self._spawn(node)
        for node in self.nodes.values():
            await node.proc.waitReady(60.0)

    def _spawn(self, node):
        node.starts += 1
        node.proc = TwistdProcess(self.reactor, node.path, node.admin,
                                  env={"PYTHONPATH": self.pythonPath}).start()
        return node.proc

    async def restart(self, nodeId):
        """SIGTERM node C{nodeId}, wait for its exit, start it again, wait for /readyz. @return: a L{Restart}."""
        node = self.nodes[nodeId]
        t0 = time.monotonic()
        code = await node.proc.stop("TERM", timeout=60.0)
        t1 = time.monotonic()
        self.saveOutput(node)
        self.log.info("node {node} exited {code} {seconds:.1f}s after SIGTERM", node=nodeId,
                      code=code, seconds=t1 - t0)
        await self._spawn(node).waitReady(60.0)
        return Restart(nodeId, code, round(t1 - t0, 2), round(time.monotonic() - t1, 2))

    async def roll(self, pause=1.0, order=None):
        """Restart every node in turn (C{order}: node ids, default all), C{pause} s apart. @return: the L{Restart}s."""
        done = []
        for nodeId in order or list(self.nodes):
            done.append(await self.restart(nodeId))
            await deferLater(self.reactor, pause, lambda: None)
        return done

    def saveOutput(self, node):
        """Append the node's process output so far to C{<tmp>/<id>.log}."""
        with open(os.path.join(self.tmp, f"{node.spec.id}.log"), "ab") as f:
            f.write(bytes(node.proc.output))

    def output(self, nodeId):
        """Everything node C{nodeId} wrote, every start of it."""
        path = os.path.join(self.tmp, f"{nodeId}.log")
        old = open(path, "rb").read() if os.path.exists(path) else b""
        return (old + bytes(self.nodes[nodeId].proc.output)).decode(errors="replace")

    async def stop(self):
        """SIGTERM every node still running and wait for them."""
        for node in self.nodes.values():
            if node.proc is not None and not node.proc.ended.called:
                try:
                    await node.proc.stop("TERM", timeout=60.0)
                except Exception:
                    node.proc.kill()
            if node.proc is not None:
                self.saveOutput(node)
                node.proc.output.clear()

    def kill(self):
        for node in self.nodes.values():
            if node.proc is not None:
                node.proc.kill()


def walkBox(count, seen=10):
    """The side of the square (from the zone's corner) where C{count} bots each see about C{seen} others (R = 50 m)."""
    return min(SIZE - 20.0, max(100.0, math.sqrt(count * math.pi * 50.0 ** 2 / seen)))


def characterRows(count, seed=1):
    """(id, class, x, z) of the run's C{count} characters: ids from 1, classes in dungeon5 teams, spread over L{walkBox}."""
    import random

    rnd = random.Random(seed)
    box = walkBox(count)
    return [(i, CLASSES[(i - 1) % len(CLASSES)], rnd.uniform(20.0, box),
             rnd.uniform(20.0, box)) for i in range(1, count + 1)]


async def prepareStores(reactor, count):
    """
    A fresh migrated database on the test MariaDB with one account and
    character per bot (L{characterRows}) and a fresh key prefix on the test
    Redis (L{mmoshard.testing.requireMySQL}, L{requireRedis}: both skip or,
    under CI=true, fail when the server is absent).

    @return: (sqlURL, redisURL, prefix, [cleanups]).
    """
    from mmoshard.store.sql import SQLStore, migrate
    from mmoshard.testing import requireMySQL, requireRedis

    sqlURL, dropper = requireMySQL()
    cleanups = [dropper]
    redisURL, prefix, cleaner = requireRedis()
    cleanups.append(cleaner)
    store = SQLStore(reactor, sqlURL, 1, 2)
    store.open()
    rows = characterRows(count)

    def insert(cursor):
        cursor.executemany("INSERT INTO accounts (id, username, username_lower, password_hash, "
                           "created_at) VALUES (?, ?, ?, 'x', 0)",
                           [(c, f"bot{c}", f"bot{c}") for c, _, _, _ in rows])
        cursor.executemany("INSERT INTO characters (id, account_id, name, name_lower, class, zone, "
                           "x, z, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                           [(c, c, f"Bot{c}", f"bot{c}", cls, ZONE, x, z) for c, cls, x, z in rows])

    try:
        await migrate(store)
        await store.runInteraction(insert)
    finally:
        await store.close()
    return sqlURL, redisURL, prefix, cleanups
