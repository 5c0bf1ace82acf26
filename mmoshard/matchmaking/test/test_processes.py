"""End to end on real twistd nodes on MariaDB and Redis: parties and solo players queue, accept, are matched and enter their instance with their tickets — all roles in one node, the instance on another world node, and the split topology (world, chat, matchmaking each alone: two parties and three solos, two matches)."""

import os
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.test.harness import insertCharacters
from mmoshard.testing import sharedStores, startNodeProcess

KEY = "mm-e2e-test-key-0123456789abcdef0123"
CLASSES = {"Tank": "warrior", "Heals": "priest", "Mage": "mage", "Rogue": "rogue",
           "Ranger": "ranger"}
PARTY = ("Tank", "Heals")
SOLOS = ("Mage", "Rogue", "Ranger")
# A full party of five (leader first): tank, healer and three damage dealers.
SECOND_PARTY = {"Tina": "paladin", "Hana": "druid", "Dell": "mage", "Dora": "rogue",
                "Drew": "ranger"}


async def until(predicate, what, timeout=20.0):
    """@return: C{predicate()} once true, polling the real reactor; fail after C{timeout} s."""
    deadline = reactor.seconds() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what} not seen in {timeout}s")
        await deferLater(reactor, 0.05, lambda: None)


class Player:
    """A real session client playing one character, collecting its events."""

    def __init__(self, client, cid, name):
        self.client = client
        self.cid = cid
        self.name = name
        self.seen = []
        client.onEvent = self.seen.append

    def of(self, type):
        return [e for e in self.seen if e.get("t") == type]

    def request(self, type, **body):
        return self.client.request(type, **body)


class MatchmakingProcessTests(TestCase):
    timeout = 120

    async def startNode(self, nodeId="mm-e2e", roles=("chat", "matchmaking", "world"), **world):
        """@return: a ready node C{nodeId} with C{roles} on the test's stores; C{world} goes to its [world] table."""
        if not hasattr(self, "stores"):
            async def characters(store):
                self.chars = await store.runInteraction(
                    insertCharacters, {**CLASSES, **SECOND_PARTY}, time.time())

            self.stores = await sharedStores(self, reactor, characters)
        mysqlURL, redisURL, prefix = self.stores
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(tmp)
        return await startNodeProcess(self, reactor, os.path.join(tmp, "node.toml"), {
            "node": {"id": nodeId, "roles": list(roles), "var_dir": os.path.join(tmp, "var")},
            "sql": {"url": mysqlURL},
            "volatile": {"url": redisURL, "prefix": prefix},
            "secrets": {"token_key": KEY},
            "directory": {"heartbeat": 0.5, "ttl": 2.0},
            "session": {"one_session_per_account": False},
            "matchmaking": {"match_interval": 0.2, "lease_ttl": 1.0},
            "world": world,
        })

    async def player(self, proc, name):
        from mmoshard.wire.client import connect

        cid, accountId = self.chars[name]
        client = await connect(reactor, proc.address, self.token(name))
        self.addCleanup(self._close, client)
        player = Player(client, cid, name)
        await player.request("world.enter", character_id=cid)
        await player.request("chat.hello", character_id=cid)
        await player.request("mm.hello", character_id=cid)
        return player

    def token(self, name):
        from mmoshard.tokens import issueAccessToken, newLoginId

        return issueAccessToken(KEY, self.chars[name][1], newLoginId(), 600, time.time())

    @staticmethod
    async def _close(client):
        try:
            await client.close()
        except Exception:
            pass

    async def test_partyAndSolosMatchedIntoTheirInstance(self):
        """A party of two and three solo players queue dungeon5 on a real node, all accept, get mm.matched and enter the one instance with their own tickets."""
        proc = await self.startNode()
        players = {name: await self.player(proc, name) for name in CLASSES}
        tank, heals = players["Tank"], players["Heals"]
        invite = await tank.request("chat.party.invite", name="Heals")
        await until(lambda: heals.of("chat.party.invited"), "the party invite")
        await heals.request("chat.party.accept", party_id=invite["party_id"])
        queued = await tank.request("mm.queue", queue="dungeon5")
        self.assertEqual([m["character_id"] for m in queued["members"]], [tank.cid, heals.cid])
        await until(lambda: heals.of("mm.queued"), "mm.queued to the party")
        for name in ("Mage", "Rogue", "Ranger"):
            await players[name].request("mm.queue", queue="dungeon5")
        proposals = {}
        for name, p in players.items():
            proposals[name] = (await until(lambda p=p: p.of("mm.proposal"), f"{name}'s proposal"))[0]
        matches = {p["match"] for p in proposals.values()}
        self.assertEqual(len(matches), 1)
        self.assertEqual(sorted(p["role"] for p in proposals.values()),
                         ["damage", "damage", "damage", "healer", "tank"])
        code, body = await proc.get("/matchmaking/queues")
        dungeon = next(q for q in body["queues"] if q["name"] == "dungeon5")
        self.assertEqual((code, dungeon["lease_holder"], dungeon["proposals"]), (200, "mm-e2e", 1))
        match = matches.pop()
        for p in players.values():
            await p.request("mm.accept", match=match)
        matched = {}
        for name, p in players.items():
            matched[name] = (await until(lambda p=p: p.of("mm.matched"), f"{name}'s mm.matched"))[0]
        instances = {m["instance"] for m in matched.values()}
        self.assertEqual(len(instances), 1)
        self.assertEqual(len({m["ticket"] for m in matched.values()}), 5)
        for name, p in players.items():
            reply = await p.request("world.instance.enter", ticket=matched[name]["ticket"])
            self.assertEqual(reply["instance_id"], matched[name]["instance"])
            self.assertEqual(reply["template"], "deadmines")
            status = await p.request("mm.status")
            self.assertEqual((status["ticket"], status["proposal"]), (None, None))
        code, metrics = await proc.get("/metrics")
        self.assertIn(b'mmoshard_mm_matches_total{queue="dungeon5"} 1.0', metrics)

    async def test_instanceOnAnotherWorldProcess(self):
        """Two parties and a solo player queue on the matchmaking process; the instance is made on another world process, and each player enters it there with its ticket (world.transfer)."""
        from mmoshard.wire.client import connect

        mm = await self.startNode("mm-1", instances=["emberforge"])
        other = await self.startNode("world-2", roles=("world",), instances=["deadmines"])
        players = {name: await self.player(mm, name) for name in CLASSES}
        for leader, member in (("Tank", "Heals"), ("Mage", "Rogue")):
            invite = await players[leader].request("chat.party.invite", name=member)
            await until(lambda m=member: players[m].of("chat.party.invited"), "the invite")
            await players[member].request("chat.party.accept", party_id=invite["party_id"])
        for name in ("Tank", "Mage", "Ranger"):
            await players[name].request("mm.queue", queue="dungeon5")
        match = None
        for name, p in players.items():
            match = (await until(lambda p=p: p.of("mm.proposal"), f"{name}'s proposal"))[0]["match"]
        for p in players.values():
            await p.request("mm.accept", match=match)
        for name, p in players.items():
            matched = (await until(lambda p=p: p.of("mm.matched"), f"{name}'s mm.matched"))[0]
            self.assertEqual((matched["match"], matched["node"]), (match, "world-2"))
            await p.request("world.instance.enter", ticket=matched["ticket"])
            transfer = (await until(lambda p=p: p.of("world.transfer"), "world.transfer"))[0]
            self.assertEqual(transfer["zone"], matched["zone"])
            there = await connect(reactor, other.address, self.token(name))
            self.addCleanup(self._close, there)
            entered = await there.request("world.enter", character_id=p.cid,
                                          ticket=transfer["ticket"])
            self.assertEqual(entered["zone"]["id"], matched["zone"])

    async def formParty(self, chat, leader, members):
        """Form a party of C{leader} and C{members} through their chat sessions C{chat}[name]."""
        for member in members:
            invite = await chat[leader].request("chat.party.invite", name=member)
            await until(lambda m=member: chat[m].of("chat.party.invited"), f"{member}'s invite")
            await chat[member].request("chat.party.accept", party_id=invite["party_id"])

    async def test_splitTopology(self):
        """Split deployment (world, chat and matchmaking each in its own process): a party of two, a party of five and three solo players queue dungeon5 on the matchmaking-only node; they get two proposals (the small party with the solos, the full party alone), accept, get mm.matched and each match enters its own instance on the world node."""
        from mmoshard.wire.client import connect

        world = await self.startNode("split-world", roles=("world",))
        chat = await self.startNode("split-chat", roles=("chat",))
        mm = await self.startNode("split-mm", roles=("matchmaking",))
        players, on = {}, {}
        for name in {**CLASSES, **SECOND_PARTY}:
            cid = self.chars[name][0]
            sessions = {}
            for kind, proc in (("world", world), ("chat", chat), ("mm", mm)):
                client = await connect(reactor, proc.address, self.token(name))
                self.addCleanup(self._close, client)
                sessions[kind] = Player(client, cid, name)
            await sessions["world"].request("world.enter", character_id=cid)
            await sessions["chat"].request("chat.hello", character_id=cid)
            await sessions["mm"].request("mm.hello", character_id=cid)
            players[name], on[name] = sessions["mm"], sessions
        chats = {name: sessions["chat"] for name, sessions in on.items()}
        second = list(SECOND_PARTY)
        await self.formParty(chats, "Tank", ["Heals"])
        await self.formParty(chats, second[0], second[1:])
        # The matchmaking-only node reads each party from chat's keys.
        for party in (PARTY, second):
            queued = await players[party[0]].request("mm.queue", queue="dungeon5")
            self.assertEqual([m["character_id"] for m in queued["members"]],
                             [players[name].cid for name in party])
            for name in party[1:]:
                await until(lambda p=players[name]: p.of("mm.queued"), f"{name}'s mm.queued")
        for name in SOLOS:
            await players[name].request("mm.queue", queue="dungeon5")
        proposals = {}
        for name, p in players.items():
            found = await until(lambda p=p: p.of("mm.proposal"), f"{name}'s proposal")
            proposals[name] = found[0]
        groups = {}
        for name, proposal in proposals.items():
            groups.setdefault(proposal["match"], set()).add(name)
        # Quotas (1 tank, 1 healer, 3 damage) leave one way: the small party with the
        # three solos, the full party alone; no party is split.
        self.assertEqual(sorted(map(sorted, groups.values())),
                         sorted([sorted(PARTY + SOLOS), sorted(second)]))
        for names in groups.values():
            self.assertEqual(sorted(proposals[name]["role"] for name in names),
                             ["damage", "damage", "damage", "healer", "tank"])
            roster = proposals[next(iter(names))]["roles"]
            self.assertEqual(sorted(r["character_id"] for r in roster),
                             sorted(players[name].cid for name in names))
        code, body = await mm.get("/matchmaking/queues")
        dungeon = next(q for q in body["queues"] if q["name"] == "dungeon5")
        self.assertEqual((code, dungeon["lease_holder"], dungeon["proposals"]),
                         (200, "split-mm", 2))
        for name, p in players.items():
            await p.request("mm.accept", match=proposals[name]["match"])
        instances, tickets = {}, set()
        for name, p in players.items():
            matched = (await until(lambda p=p: p.of("mm.matched"), f"{name}'s mm.matched"))[0]
            self.assertEqual((matched["match"], matched["node"]),
                             (proposals[name]["match"], "split-world"))
            instances.setdefault(matched["match"], set()).add(matched["instance"])
            tickets.add(matched["ticket"])
            reply = await on[name]["world"].request("world.instance.enter",
                                                    ticket=matched["ticket"])
            self.assertEqual((reply["instance_id"], reply["template"]),
                             (matched["instance"], "deadmines"))
            status = await p.request("mm.status")
            self.assertEqual((status["ticket"], status["proposal"]), (None, None))
        # Every match's members share one instance; the two matches have different ones.
        self.assertEqual(sorted(map(len, instances.values())), [1, 1])
        self.assertEqual(len(set.union(*instances.values())), 2)
        self.assertEqual(len(tickets), len(players))
