"""Two real matchmaking processes (twistd: chat, matchmaking and the bench's stand-in IInstances) on MariaDB and Redis: kill -9 of the lease holder in the middle of a ready check, with tickets waiting on both, and between completing a match and announcing it."""

import os
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.bots.instancestub import ROLE, writePlugin
from mmoshard.matchmaking.test.harness import insertCharacters
from mmoshard.matchmaking.test.test_processes import until
from mmoshard.testing import repoRoot, sharedStores, startNodeProcess

KEY = "mm-crash-test-key-0123456789abcdef0123"
DUNGEON = {"Tank": "warrior", "Heals": "priest", "Mage": "mage", "Rogue": "rogue",
           "Ranger": "ranger"}
ARENA = {"Ann": "mage", "Ben": "rogue", "Cid": "priest", "Dot": "warrior"}
MATCH_INTERVAL = 0.25
LEASE_TTL = 1.5
# Scheduling on a busy test machine: how late a takeover may come beyond
# the lease's TTL and one pass of the survivor.
SLACK = 3.0


class Player:
    """A character and what all its sessions (the first one's node may die) received."""

    def __init__(self, name, cid, accountId):
        self.name = name
        self.cid = cid
        self.accountId = accountId
        self.client = None
        self.seen = []
        self.hello = None  # the answer to its last mm.hello

    def of(self, type):
        return [e for e in self.seen if e.get("t") == type]

    def request(self, type, **body):
        return self.client.request(type, **body)


class CrashTests(TestCase):
    timeout = 240

    async def setUpStores(self):
        async def characters(store):
            self.chars = await store.runInteraction(insertCharacters, {**DUNGEON, **ARENA},
                                                    time.time())

        self.mysqlURL, self.redisURL, self.prefix = await sharedStores(self, reactor, characters)
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.pythonPath = writePlugin(os.path.join(self.tmp, "plugins")) + os.pathsep + repoRoot()

    async def spawn(self, nodeId, **matchmaking):
        """@return: a ready matchmaking process C{nodeId} (chat, matchmaking, benchinstances), C{matchmaking} added to its [matchmaking]."""
        return await startNodeProcess(self, reactor, os.path.join(self.tmp, f"{nodeId}.toml"), {
            "node": {"id": nodeId, "roles": ["chat", "matchmaking", ROLE],
                     "var_dir": os.path.join(self.tmp, nodeId)},
            "sql": {"url": self.mysqlURL},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": KEY},
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "session": {"resume_grace": 20.0},
            "matchmaking": {"match_interval": MATCH_INTERVAL, "lease_ttl": LEASE_TTL,
                            "ready_timeout": 60.0, "instances_file": "", **matchmaking},
        }, env={"PYTHONPATH": self.pythonPath})

    async def connect(self, player, proc):
        """Start a session of C{player} on C{proc}: chat.hello and mm.hello (kept as C{player.hello})."""
        from mmoshard.tokens import issueAccessToken, newLoginId
        from mmoshard.wire.client import connect

        token = issueAccessToken(KEY, player.accountId, newLoginId(), 600, time.time())
        client = await connect(reactor, proc.address, token, autoResume=False)
        self.addCleanup(self._close, client)
        client.onEvent = player.seen.append
        player.client = client
        await player.request("chat.hello", character_id=player.cid)
        player.hello = await player.request("mm.hello", character_id=player.cid)
        return player

    @staticmethod
    async def _close(client):
        try:
            await client.close()
        except Exception:
            pass

    async def holder(self, proc, queue):
        code, body = await proc.get("/matchmaking/queues")
        return next(q for q in body["queues"] if q["name"] == queue)["lease_holder"]

    async def waitHolder(self, proc, queue, node, timeout=30.0):
        """Poll C{proc}'s GET /matchmaking/queues until C{node} holds C{queue}."""
        began = reactor.seconds()
        while await self.holder(proc, queue) != node:
            self.assertLess(reactor.seconds() - began, timeout, f"{node} never held {queue}")
            await deferLater(reactor, 0.05, lambda: None)

    async def test_lease_holder_killed_mid_ready_check(self):
        """
        kill -9 of the holder during a ready check: the other process takes
        the leases within the TTL, resumes the check (its players' accepts
        stand; the dead node's players reconnect, get the proposal again and
        accept), everyone is matched exactly once; the tickets waiting on
        both (a party across the two) survive and are matched later.
        """
        await self.setUpStores()
        a = await self.spawn("mm-a")
        for queue in ("dungeon5", "arena2v2"):
            await self.waitHolder(a, queue, "mm-a")
        b = await self.spawn("mm-b")
        players = {name: Player(name, *self.chars[name]) for name in {**DUNGEON, **ARENA}}
        onA = ("Heals", "Rogue", "Ann", "Ben")
        for name, p in players.items():
            await self.connect(p, a if name in onA else b)

        # The arena: a party across the processes (Cid on B leads Ben on A)
        # and Ann alone: three players, no match yet.
        cid, ben = players["Cid"], players["Ben"]
        invite = await cid.request("chat.party.invite", name="Ben")
        await until(lambda: ben.of("chat.party.invited"), "the party invite")
        await ben.request("chat.party.accept", party_id=invite["party_id"])
        await until(lambda: [e for e in cid.of("chat.party.update")
                             if len(e["party"]["members"]) == 2], "Ben in Cid's party")
        await deferLater(reactor, 0.5, lambda: None)  # the party's change reaches matchmaking
        arenaTicket = (await cid.request("mm.queue", queue="arena2v2"))["ticket"]
        annTicket = (await players["Ann"].request("mm.queue", queue="arena2v2"))["ticket"]

        # The dungeon: five solo players on both; A proposes the match.
        for name in DUNGEON:
            await players[name].request("mm.queue", queue="dungeon5")
        proposals = {name: (await until(lambda p=players[name]: p.of("mm.proposal"),
                                        f"{name}'s proposal"))[0] for name in DUNGEON}
        (match,) = {p["match"] for p in proposals.values()}
        for name in ("Tank", "Mage", "Ranger"):
            await players[name].request("mm.accept", match=match)

        # kill -9 of the holder: B takes the leases over within the TTL.
        # Each queue's lease is renewed on its own, so the two may expire a
        # pass apart: both are bounded from the kill.
        killed = reactor.seconds()
        a.kill()
        await a.ended
        for queue in ("dungeon5", "arena2v2"):
            await self.waitHolder(b, queue, "mm-b")
            self.assertLess(reactor.seconds() - killed, LEASE_TTL + MATCH_INTERVAL + SLACK, queue)

        # A's players come back on B within the resume grace: their
        # tickets are there, the ready check asks them again.
        for name in onA:
            await self.connect(players[name], b)
        for name in ("Heals", "Rogue"):
            p = players[name]
            self.assertEqual(p.hello["proposal"]["match"], match)
            await until(lambda p=p: len(p.of("mm.proposal")) >= 2, f"{name}'s proposal again")
            self.assertEqual(p.of("mm.proposal")[-1]["match"], match)
        self.assertEqual(players["Ann"].hello["ticket"]["id"], annTicket)
        self.assertEqual(ben.hello["ticket"]["id"], arenaTicket)
        for name in ("Heals", "Rogue"):
            await players[name].request("mm.accept", match=match)
        for name in DUNGEON:
            await until(lambda p=players[name]: p.of("mm.matched"), f"{name}'s mm.matched")

        # The arena's fourth player: the tickets that outlived A are matched.
        await players["Dot"].request("mm.queue", queue="arena2v2")
        arena = {name: (await until(lambda p=players[name]: p.of("mm.proposal"),
                                    f"{name}'s arena proposal"))[-1] for name in ARENA}
        (arenaMatch,) = {p["match"] for p in arena.values()}
        self.assertEqual({p["team"] for n, p in arena.items() if n in ("Cid", "Ben")}, {arena["Cid"]["team"]})
        for name in ARENA:
            await players[name].request("mm.accept", match=arenaMatch)
        for name in ARENA:
            await until(lambda p=players[name]: p.of("mm.matched"), f"{name}'s arena mm.matched")

        # Nobody matched twice; nothing left behind.
        await deferLater(reactor, 1.0, lambda: None)
        for name, p in players.items():
            matched = p.of("mm.matched")
            self.assertEqual(len(matched), 1, name)
            self.assertEqual(matched[0]["match"], match if name in DUNGEON else arenaMatch)
            status = await p.request("mm.status")
            self.assertEqual((status["ticket"], status["proposal"]), (None, None), name)
        self.assertEqual(len({p.of("mm.matched")[0]["instance"] for p in players.values()}), 2)
        code, body = await b.get("/matchmaking/queues")
        for q in body["queues"]:
            self.assertEqual((q["name"], q["waiting"], q["proposals"]), (q["name"], 0, 0))
        self.assertEqual(await b.stop(), 0, b.output.decode(errors="replace")[-3000:])

    async def test_lease_holder_killed_between_complete_and_announce(self):
        """
        kill -9 of the holder after it completed a match but before any
        mm.matched went out ([matchmaking] test_pause_announce): the other
        process takes the lease and announces the match to its players; the
        dead node's players reconnect and get their mm.matched from
        mm.hello (answer and event) and mm.status — every character gets
        its match, its own admission ticket, and no ticket or proposal is
        left.
        """
        await self.setUpStores()
        a = await self.spawn("mm-a", test_pause_announce=60.0)
        await self.waitHolder(a, "dungeon5", "mm-a")
        b = await self.spawn("mm-b")
        players = {name: Player(name, *self.chars[name]) for name in DUNGEON}
        onA = ("Heals", "Rogue")
        for name, p in players.items():
            await self.connect(p, a if name in onA else b)
        for name in DUNGEON:
            await players[name].request("mm.queue", queue="dungeon5")
        proposals = {name: (await until(lambda p=players[name]: p.of("mm.proposal"),
                                        f"{name}'s proposal"))[0] for name in DUNGEON}
        (match,) = {p["match"] for p in proposals.values()}
        for name in DUNGEON:
            await players[name].request("mm.accept", match=match)

        # A completes the match (tickets gone from the store) and pauses.
        async def completed():
            code, body = await b.get("/matchmaking/queues")
            q = next(q for q in body["queues"] if q["name"] == "dungeon5")
            return q["proposals"] == 0 and q["waiting"] == 0

        began = reactor.seconds()
        while not await completed():
            self.assertLess(reactor.seconds() - began, 20.0, "the match never completed")
            await deferLater(reactor, 0.05, lambda: None)
        for p in players.values():
            self.assertEqual(p.of("mm.matched"), [], p.name)
        a.kill()
        await a.ended
        await self.waitHolder(b, "dungeon5", "mm-b")

        # B announces the unannounced match to its players.
        for name in DUNGEON:
            if name not in onA:
                await until(lambda p=players[name]: p.of("mm.matched"), f"{name}'s mm.matched")
        # A's players come back on B: mm.hello answers the match, and sends it.
        for name in onA:
            p = players[name]
            await self.connect(p, b)
            self.assertEqual(p.hello["matched"]["match"], match, name)
            self.assertEqual((p.hello["ticket"], p.hello["proposal"]), (None, None), name)
            await until(lambda p=p: p.of("mm.matched"), f"{name}'s mm.matched again")
        tickets = set()
        for name, p in players.items():
            self.assertEqual({e["match"] for e in p.of("mm.matched")}, {match}, name)
            (ticket,) = {e["ticket"] for e in p.of("mm.matched")}
            self.assertTrue(ticket, name)
            tickets.add(ticket)
            status = await p.request("mm.status")
            self.assertEqual((status["ticket"], status["proposal"]), (None, None), name)
            self.assertEqual(status["matched"]["ticket"], ticket, name)
        self.assertEqual(len(tickets), len(DUNGEON))
        self.assertEqual(await b.stop(), 0, b.output.decode(errors="replace")[-3000:])
