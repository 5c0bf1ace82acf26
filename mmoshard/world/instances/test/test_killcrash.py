"""Boss kills rewarded exactly once across kill -9: real twistd world processes on MariaDB and Redis, killed at many moments around the kill transaction."""

import json
import random

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError

from mmoshard.tokens import issueAccessToken
from mmoshard.wire.client import RequestError
from mmoshard.world.combat import records as R
from mmoshard.world.instances.ids import instanceZoneId, parseInstanceZone
from mmoshard.world.test.test_combatprocesses import DeathWatch
from mmoshard.world.test.worldprocess import WorldProcessCase, sleep, waitFor

KEY = "kill-crash-test-key-0123456789abcdef"
TEMPLATE = "vault"
MARK = "vault_mark"
BOSS_EXP = 7  # four kills at most per character: 28 exp, never a level-up
SPAWN = (20.0, 20.0)  # the arena's and the layout's first spawn point
# Four identical bosses 2 m around the spawn point: inside the warrior's
# 5 m melee range, so nobody walks.  They aggro nobody (radius 0) and pull
# nobody (social radius 0): a boss fights only when hit.
BOSSES = {"b1": (22.0, 20.0), "b2": (20.0, 22.0), "b3": (18.0, 20.0), "b4": (20.0, 18.0)}
SENTRY = (40.0, 40.0)
STRIKE = "heroic_strike"  # 18 damage at level 1: one hit kills a boss; 15 of the 20 starting rage

ZONES = f"""
[zones.arena]
size = [128.0, 128.0]
spawns = [[{SPAWN[0]}, 0.0, {SPAWN[1]}]]
graveyard = [{SPAWN[0]}, 0.0, {SPAWN[1]}]
aoi_radius = 50.0
tick_rate = 10.0
max_speed = 7.0
"""

# The sentry, trash that nobody fights, stands in every copy in view of the
# spawn point: once a client sees it, it has seen every NPC of the copy
# (a boss killed before the rebuild would have come in the same update).
NPCS = """
[npcs.vault_sentry]
name = "Vault Sentry"
level = 1
health = 100
damage = [1, 1]
attack_speed = 2.0
aggro_radius = 0.0
social_radius = 0.0
leash = 40.0

[npcs.vault_keeper]
name = "Vault Keeper"
level = 1
health = 10
damage = [1, 1]
attack_speed = 2.0
aggro_radius = 0.0
social_radius = 0.0
leash = 40.0
"""

ITEMS = f"""
[items.{MARK}]
name = "Mark of the Vault"
kind = "material"
stack = 1000
"""

_BOSS = """
[[instances.vault.bosses]]
id = "{id}"
npc = "vault_keeper"
at = [{x}, {z}]
exp = {exp}
loot = [{{item = "{mark}", chance = 1.0}}]
[[instances.vault.bosses.phases]]
below = 1.0
"""

INSTANCES = f"""
[instances.{TEMPLATE}]
name = "The Vault"
kind = "dungeon"
party_size = 5
lockout = "weekly"
exit = [0.0, 0.0, 4.0, 4.0]

[instances.{TEMPLATE}.layout]
size = [64.0, 64.0]
spawns = [[{SPAWN[0]}, 0.0, {SPAWN[1]}]]
graveyard = [{SPAWN[0]}, 0.0, {SPAWN[1]}]
aoi_radius = 50.0
tick_rate = 10.0
max_speed = 7.0

[[instances.{TEMPLATE}.packs]]
members = ["vault_sentry"]
at = [{SENTRY[0]}, {SENTRY[1]}]
spread = 0.0
""" + "".join(_BOSS.format(id=b, x=x, z=z, exp=BOSS_EXP, mark=MARK) for b, (x, z) in BOSSES.items())

# When a node is killed relative to a boss kill (the loop picks at random):
# as the killing blow is sent; in the callback delivering the boss's DEATH
# record; once the kill transaction is open in MariaDB (rows written, not
# committed); once the kill row is committed; once world.loot arrived; or a
# random delay after the DEATH record, up to a little past the pause.
MOMENTS = ("cast", "death", "open", "commit", "told", "random")
# The loop's node restarts: three times in four under the same node id.
NODES = ("world-a", "world-a", "world-a", "world-b")


class VaultCase(WorldProcessCase):
    """
    A world node in a real twistd process hosting copies of a one-room
    template with four one-hit bosses, each dropping a mark with chance 1:
    a character holds exactly one mark per committed kill whose roster
    holds it.
    """

    timeout = 120
    key = KEY
    dataFiles = {"zones": ZONES, "npcs": NPCS, "items": ITEMS, "instances": INSTANCES}

    async def _setUp(self):
        await WorldProcessCase._setUp(self)
        self.accounts = 0
        self.accountOf = {}  # character id -> its account

    # --- the node ----------------------------------------------------------------------

    def startWorld(self, pause, name="world-a"):
        """@return: a ready world node C{name} whose kill transaction sleeps C{pause} s before its commit."""
        return WorldProcessCase.startWorld(self, name, test_pause_kill=pause)

    async def crash(self, proc, clients):
        """kill -9 C{proc} (if not dead yet); @return: once it and the C{clients}' sessions are gone."""
        proc.kill()
        await proc.ended
        self.assertEqual(proc.signal, 9)
        for c in clients:
            if c.session is not None:
                await c.session.ended

    # --- characters and clients -----------------------------------------------------------

    async def character(self, zone="arena"):
        """@return: the id of a new level-1 warrior of a new account, saved at C{zone}'s first spawn point."""
        from mmoshard.world.test.dbfixture import makeCharacter

        self.accounts += 1
        n = self.accounts
        cid = await makeCharacter(self.sql, n, f"Vaulter{n}", zone, SPAWN[0], 0.0, SPAWN[1])
        self.accountOf[cid] = n
        return cid

    def client(self, proc, cid):
        account = self.accountOf[cid]
        token = issueAccessToken(KEY, account, f"login-{account}", 3600, reactor.seconds())
        c = DeathWatch(reactor, proc.address, token, cid, retries=20)
        self.addCleanup(self.dropClient, c)
        return c

    def dropClient(self, c):
        if c.session is not None:
            c.session.autoResume = False  # no reconnect to a node the cleanup kills
            c.session.drop()

    async def newParty(self, proc, withSecond=True):
        """
        A character walks in from the open world with world.instance.enter
        {template} (a new copy: its solo copy); a second one, as a party
        member would be, is saved inside that copy and logs in there.

        @return: (the copy's instance id, [character ids], [their clients]).
        """
        first = await self.character()
        c = await self.enterCopy(proc, first)
        iid = parseInstanceZone(c.zone)[1]
        cids, clients = [first], [c]
        if withSecond:
            second = await self.character(instanceZoneId(TEMPLATE, iid))
            clients.append(await self.enterCopy(proc, second, iid))
            cids.append(second)
        return iid, cids, clients

    async def enterCopy(self, proc, cid, iid=None):
        """
        Log C{cid} in (its saved zone: the open world, or a copy, re-created
        from SQL after a crash) and, when it is not inside a copy, send
        world.instance.enter {template}; an C{instance.unavailable} (the
        copy's host died a moment ago) is tried again after its
        C{retry_after}.

        @return: the client, inside copy C{iid} (when given).
        """
        c = self.client(proc, cid)
        deadline = reactor.seconds() + 15.0
        while True:
            try:
                if c.zone is None:
                    await c.enter()
                if parseInstanceZone(c.zone) is None:
                    await c.session.request("world.instance.enter", template=TEMPLATE)
                    await waitFor(lambda: parseInstanceZone(c.zone) is not None)
                break
            except (RequestError, ConnectError) as e:
                # The copy's host died a moment ago: unavailable until its
                # key runs out, or redirected to it while the directory
                # still lists it.
                if reactor.seconds() > deadline or (
                        isinstance(e, RequestError) and e.code != "instance.unavailable"):
                    raise
                self.log.info("character {cid} waits: {e}", cid=cid, e=e)
                self.dropClient(c)
                await sleep(min(getattr(e, "retry_after", None) or 0.5, 1.0))
                c = self.client(proc, cid)
        if iid is not None:
            self.assertEqual(c.zone, instanceZoneId(TEMPLATE, iid))
        return c

    # --- what a client sees -------------------------------------------------------------------

    def bossesSeen(self, c):
        """
        @return: {encounter id: (entity id, dead)} of the bosses in C{c}'s
            view (known by their places), and "sentry" when it sees the
            sentry.
        """
        where = {pos: enc for enc, pos in BOSSES.items()}
        where[SENTRY] = "sentry"
        seen = {}
        for m in c.events:
            if m["t"] in ("world.zone", "world.reset"):
                seen = {}
            elif m["t"] == "world.u":
                for s in m.get("e", ()):
                    if s[1] == "n" and (s[5], s[7]) in where:
                        seen[s[0]] = where[(s[5], s[7])]
        return {enc: (eid, c.health.get(eid, [0, 0, True])[2]) for eid, enc in seen.items()}

    async def aliveBosses(self, c, expected):
        """
        Wait until C{c} sees the sentry and every boss of C{expected}
        alive: @return: the encounter ids of the living bosses it sees (a
        boss killed before the copy was rebuilt is not there at all).
        """
        def alive():
            return {e for e, (_, dead) in self.bossesSeen(c).items() if not dead}

        await waitFor(lambda: set(expected) | {"sentry"} <= alive())
        await sleep(0.2)  # a boss that should not be there would have come with the sentry
        return alive() - {"sentry"}

    # --- what the database holds --------------------------------------------------------------

    async def kills(self):
        """@return: {(instance id, encounter): roster} of the committed kills."""
        rows = await self.sql.runQuery("SELECT instance_id, encounter, roster FROM instance_kills")
        return {(int(i), e): tuple(json.loads(r)) for i, e, r in rows}

    async def killRow(self, iid, encounter):
        rows = await self.sql.runQuery(
            "SELECT roster FROM instance_kills WHERE instance_id = ? AND encounter = ?",
            (iid, encounter))
        return rows[0][0] if rows else None

    async def killOpen(self):
        """
        @return: True while a transaction of this test's database that
        changed at least five rows is open (the kill's: its row, a lockout,
        exp, a ledger row, the item; a position save changes one row per
        character).
        """
        rows = await self.sql.runQuery(
            "SELECT t.trx_rows_modified FROM information_schema.innodb_trx t "
            "JOIN information_schema.processlist p ON p.ID = t.trx_mysql_thread_id "
            "WHERE p.DB = DATABASE() AND t.trx_rows_modified >= 5")
        return bool(rows)

    async def holdings(self, cids):
        """@return: {character: (marks, (level, exp), sorted boss ledger keys, {template: instance})}."""
        out = {}
        for cid in cids:
            marks = await self.sql.runQuery(
                "SELECT COALESCE(SUM(count), 0) FROM inventory WHERE character_id = ? AND item_id = ?",
                (cid, MARK))
            [(level, exp)] = await self.sql.runQuery(
                "SELECT level, exp FROM characters WHERE id = ?", (cid,))
            keys = await self.sql.runQuery(
                "SELECT idem_key FROM progression_ledger WHERE character_id = ? ORDER BY idem_key",
                (cid,))
            locks = await self.sql.runQuery(
                "SELECT template, instance_id FROM instance_lockouts WHERE character_id = ?", (cid,))
            out[cid] = (int(marks[0][0]), (int(level), int(exp)), [k for (k,) in keys],
                        {t: int(i) for t, i in locks})
        return out

    async def assertExactlyOnce(self, cids):
        """
        Every character of C{cids} holds one mark and the boss's exp per
        committed kill whose roster holds it, the ledger keys of exactly
        those kills (each once), and a lockout to the copy of its kills.

        @return: the committed kills.
        """
        kills = await self.kills()
        held = await self.holdings(cids)
        for cid in cids:
            mine = sorted(k for k, roster in kills.items() if cid in roster)
            keys = sorted([f"boss:{i}:{e}:{cid}" for i, e in mine]
                          + [f"boss:{i}:{e}:{cid}:{MARK}" for i, e in mine])
            copies = {i for i, _ in mine}
            self.assertLessEqual(len(copies), 1)
            expected = (len(mine), (1, BOSS_EXP * len(mine)), keys,
                        {TEMPLATE: copies.pop()} if copies else {})
            self.assertEqual(held[cid], expected, f"character {cid}, kills {mine}")
        return kills

    # --- striking a boss and crashing ------------------------------------------------------------

    async def strikeAndCrash(self, proc, c, encounter, moment, clients, delay=0.0):
        """
        C{c} hits boss C{encounter} with one killing blow; the node is killed
        with kill -9 at C{moment} (L{MOMENTS}; C{delay}: the seconds after
        the DEATH record for "random").

        @return: C{(died, moment)}: whether the boss's DEATH record arrived
            before the crash, and the moment hit: C{moment}, or "late" when
            the kill committed before the test saw its transaction open
            (a loaded machine).
        """
        iid = parseInstanceZone(c.zone)[1]
        eid = self.bossesSeen(c)[encounter][0]
        for other in clients:
            other.session.autoResume = False  # the node's end ends the sessions for good
        died = Deferred()
        c.onDeath = lambda dead: dead == eid and not died.called and died.callback(None)
        if moment == "death":
            c.onDeath = lambda dead: dead == eid and proc.kill()
        sent = Deferred.fromCoroutine(c.cast(STRIKE, target=eid))
        sent.addErrback(lambda f: None)  # lost with the node, for some moments
        if moment == "cast":
            await sleep(delay / 4)  # the blow in flight: landed or not, the kill not committed
        elif moment == "death":
            await waitFor(lambda: proc.ended.called, timeout=10.0)  # killed by onDeath
        elif moment in ("open", "commit", "told", "random"):
            await waitFor(lambda: died.called, timeout=10.0)
            if moment == "random":
                await sleep(delay)
            elif moment == "open":
                if await self.waitDb(lambda: self.openOrCommitted(iid, encounter),
                                     "the kill transaction open") == "committed":
                    moment = "late"
            elif moment == "commit":
                await self.waitDb(lambda: self.openOrCommitted(iid, encounter, open=False),
                                  "the kill row committed")
            else:
                await waitFor(lambda: any(m["t"] == "world.loot" for m in c.events))
        await self.crash(proc, clients)
        died = died.called or any(ev.kind == R.DEATH and ev.b == eid for ev in c.combatEvents)
        return died, moment

    async def openOrCommitted(self, iid, encounter, open=True):
        """@return: "committed" once the kill row is visible, "open" while (C{open}) its transaction is; else None."""
        if await self.killRow(iid, encounter) is not None:
            return "committed"
        if open and await self.killOpen():
            return "open"
        return None

    async def waitDb(self, check, what, timeout=10.0):
        """@return: what C{check} answers first that is not None, polled every 10 ms."""
        deadline = reactor.seconds() + timeout
        while True:
            found = await check()
            if found is not None:
                return found
            self.assertLess(reactor.seconds(), deadline, f"never saw {what}")
            await sleep(0.01)

    async def strike(self, c, encounter, clients):
        """C{c} kills boss C{encounter}; @return: once every client of C{clients} got its world.loot."""
        eid = self.bossesSeen(c)[encounter][0]
        before = [len(self.loots(x)) for x in clients]
        await c.cast(STRIKE, target=eid)
        for x, n in zip(clients, before):
            await waitFor(lambda x=x, n=n: len(self.loots(x)) > n)

    def loots(self, c):
        return [m for m in c.events if m["t"] == "world.loot"]


class KillCrashTests(VaultCase):
    """Boss kills across kill -9 (L{VaultCase}'s node and characters)."""

    # --- tests -----------------------------------------------------------------------------------

    async def test_crashInsideTheTransaction(self):
        """
        Two characters in a copy; one kills a boss whose kill transaction
        sleeps 1.5 s before its commit.  The node is killed with kill -9
        while that transaction is open (its rows written, the kill row not
        visible): nothing of the kill is in MariaDB (no kill row, lockout,
        exp, ledger row or item).  Restarted, both log in again into the
        copy rebuilt from SQL, where the boss is alive; killing it again
        writes one kill row with both, one lockout, the exp and one mark
        each.
        """
        started = reactor.seconds()
        proc = await self.startWorld(pause=1.5)
        iid, cids, clients = await self.newParty(proc)
        a = clients[0]
        self.assertEqual(await self.aliveBosses(a, BOSSES), set(BOSSES))
        self.assertEqual(await self.strikeAndCrash(proc, a, "b1", "open", clients), (True, "open"))
        self.assertEqual(await self.assertExactlyOnce(cids), {})

        proc2 = await self.startWorld(pause=0.0)
        clients = [await self.enterCopy(proc2, cid, iid) for cid in cids]
        self.assertEqual(await self.aliveBosses(clients[0], BOSSES), set(BOSSES))
        self.assertEqual(await self.assertExactlyOnce(cids), {})
        await self.strike(clients[0], "b1", clients)
        self.assertEqual(await self.assertExactlyOnce(cids), {(iid, "b1"): tuple(sorted(cids))})
        for c in clients:
            [loot] = self.loots(c)
            self.assertEqual([(i["item"], i["count"]) for i in loot["items"]], [(MARK, 1)])
        self.assertEqual(await proc2.stop(), 0)
        self.log.info("crash inside the kill transaction: {s:.1f}s", s=reactor.seconds() - started)

    async def test_crashRightAfterTheCommit(self):
        """
        Two characters in a copy; the node is killed with kill -9 as soon
        as the kill row of a boss is committed (before anyone is told).
        Another node (a new node id) adopts the copy once the dead node's
        host key ran out: rebuilt from SQL, it has that boss dead (not
        spawned; the other three alive), and each character holds the mark
        once, the exp once, one lockout to the copy and the kill's ledger
        keys once; world.inventory shows the mark.
        """
        started = reactor.seconds()
        proc = await self.startWorld(pause=0.3)
        iid, cids, clients = await self.newParty(proc)
        self.assertEqual(await self.aliveBosses(clients[0], BOSSES), set(BOSSES))
        self.assertEqual(await self.strikeAndCrash(proc, clients[0], "b1", "commit", clients),
                         (True, "commit"))
        self.assertEqual(await self.assertExactlyOnce(cids), {(iid, "b1"): tuple(sorted(cids))})

        proc2 = await self.startWorld(pause=0.3, name="world-b")
        clients = [await self.enterCopy(proc2, cid, iid) for cid in cids]
        self.assertEqual(await self.aliveBosses(clients[0], set(BOSSES) - {"b1"}),
                         set(BOSSES) - {"b1"})
        self.assertNotIn("b1", self.bossesSeen(clients[0]))
        for c in clients:
            reply = await c.session.request("world.inventory")
            self.assertEqual([(s["item"], s["count"]) for s in reply["slots"]], [(MARK, 1)])
        self.assertEqual(await self.assertExactlyOnce(cids), {(iid, "b1"): tuple(sorted(cids))})
        self.assertEqual(await proc2.stop(), 0)
        self.log.info("crash after the kill commit: {s:.1f}s", s=reactor.seconds() - started)

    async def test_randomisedCrashLoop(self):
        """
        A seeded loop of boss kills, each followed by kill -9 of the node at
        a random moment around the kill transaction (each moment of
        L{MOMENTS} four times, in a shuffled order, then more until at least
        20 bosses died), and a restart, mostly under the same node id,
        sometimes as another node.  Characters come in pairs (the
        second sometimes absent, so rosters differ); a pair gets a new copy
        once every boss of its copy is committed dead (its lockouts bind it
        there).  After every crash, each character holds exactly one mark,
        the exp and the ledger keys of each committed kill whose roster
        holds it, and every copy entered again, rebuilt from SQL, has
        exactly the bosses without a committed kill alive.
        """
        started = reactor.seconds()
        rng = random.Random(16)
        pause = 0.4
        schedule = list(MOMENTS) * 4
        rng.shuffle(schedule)
        proc = await self.startWorld(pause, NODES[0])
        copies = {}  # instance id -> its characters
        everyone = []
        iid = None
        deaths = crashes = lostAfterDeath = 0
        restarts = {}  # node id -> restarts under it
        outcomes = {m: [0, 0] for m in MOMENTS}  # moment -> [not committed, committed]
        while schedule or deaths < 20:
            moment = schedule.pop() if schedule else rng.choice(MOMENTS)
            killed = {e for (i, e) in await self.kills() if i == iid}
            if iid is None or killed == set(BOSSES):
                iid, cids, clients = await self.newParty(proc, withSecond=rng.random() < 0.8)
                copies[iid] = cids
                everyone += cids
                killed = set()
            else:
                cids = copies[iid]
                present = cids[:1] + [c for c in cids[1:] if rng.random() < 0.7]
                clients = [await self.enterCopy(proc, cid, iid) for cid in present]
            alive = set(BOSSES) - killed
            self.assertEqual(await self.aliveBosses(clients[0], alive), alive)
            target = rng.choice(sorted(alive))
            delay = rng.uniform(0.0, pause + 0.3)
            died, moment = await self.strikeAndCrash(proc, clients[0], target, moment, clients,
                                                     delay)
            crashes += 1
            deaths += died
            kills = await self.assertExactlyOnce(everyone)
            committed = (iid, target) in kills
            if committed:
                # Its roster: the characters inside at the kill.
                self.assertEqual(kills[(iid, target)], tuple(sorted(c.characterId for c in clients)))
            outcomes.setdefault(moment, [0, 0])[committed] += 1
            lostAfterDeath += died and not committed
            self.log.info("crash {n} ({moment}, {delay:.2f}s): boss {target} of instance {iid}, "
                          "roster {roster}, died {died}, committed {committed}", n=crashes,
                          moment=moment, delay=delay, target=target, iid=iid, died=died,
                          committed=committed, roster=[c.characterId for c in clients])
            # Mostly the same node id again (it re-creates its copies at
            # once), sometimes the other (it adopts them once the dead
            # node's keys ran out).
            node = rng.choice(NODES)
            restarts[node] = restarts.get(node, 0) + 1
            proc = await self.startWorld(pause, node)

        # Every copy, rebuilt once more: exactly its uncommitted bosses live.
        kills = await self.assertExactlyOnce(everyone)
        for copy, cids in copies.items():
            c = await self.enterCopy(proc, cids[0], copy)
            alive = set(BOSSES) - {e for (i, e) in kills if i == copy}
            self.assertEqual(await self.aliveBosses(c, alive), alive)
            await c.leave()
        dupes = await self.sql.runQuery(
            "SELECT character_id, idem_key FROM progression_ledger "
            "GROUP BY character_id, idem_key HAVING COUNT(*) > 1")
        self.assertEqual(list(dupes), [])
        self.assertEqual(await proc.stop(), 0)
        # Killed with its transaction seen open: never committed; seen
        # committed: always there.  And both sides of the commit were hit
        # after the boss died.
        self.assertEqual(outcomes["open"][1], 0, outcomes)
        self.assertEqual(outcomes["commit"][0] + outcomes["told"][0], 0, outcomes)
        self.assertGreater(outcomes["open"][0], 0, outcomes)
        self.assertGreater(lostAfterDeath, 0)
        self.assertGreater(len(kills), 0)
        self.assertGreaterEqual(deaths, 20)
        self.log.info("crash loop: {crashes} crashes, {deaths} bosses died, {kills} kills "
                      "committed in {copies} copies, {chars} characters; by moment [lost, "
                      "committed]: {outcomes}; restarts {restarts}; {s:.1f}s", crashes=crashes,
                      deaths=deaths, restarts=restarts,
                      kills=len(kills), copies=len(copies), chars=len(everyone),
                      outcomes=outcomes, s=reactor.seconds() - started)
