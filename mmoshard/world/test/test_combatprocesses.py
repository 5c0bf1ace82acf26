"""Combat end to end on real twistd world processes, MariaDB and Redis: a kill's loot and exp exactly once, across kill -9, and item use under a resent key."""

from twisted.internet import reactor

from mmoshard.tokens import issueAccessToken
from mmoshard.wire.client import RequestError
from mmoshard.world.client import WorldClient
from mmoshard.world.combat import records as R
from mmoshard.world.test.worldprocess import WorldProcessCase, sleep, waitFor

KEY = "combat-process-test-key-0123456789"

# The test's own zone: the character stands at SPAWN, one NPC (spread 0:
# exactly at NPC_AT) 2 m away, inside the warrior's 5 m melee range and the
# NPC's 3 m attack range, so nobody has to walk.
SPAWN = (100.0, 100.0)
NPC_AT = (102.0, 100.0)
RESPAWN = 2.0
NPC_EXP = 40  # below the 100 exp of level 1 -> 2: two kills never level up
SPAWN_ID = "arena:0:0"

ZONES = f"""
[zones.arena]
size = [256.0, 256.0]
spawns = [[{SPAWN[0]}, 0.0, {SPAWN[1]}]]
aoi_radius = 50.0
tick_rate = 10.0
max_speed = 7.0
graveyard = [{SPAWN[0]}, 0.0, {SPAWN[1]}]

[[zones.arena.packs]]
members = ["training_dummy"]
at = [{NPC_AT[0]}, {NPC_AT[1]}]
spread = 0.0
respawn = {RESPAWN}
"""

# Low health (two or three warrior hits), a scratch of a swing, loot that
# always drops, and a fixed exp.
NPCS = f"""
[npcs.training_dummy]
name = "Training Dummy"
level = 1
health = 30
damage = [1, 1]
attack_speed = 2.0
aggro_radius = 5.0
social_radius = 0.0
leash = 40.0
exp = {NPC_EXP}
loot = [{{item = "dummy_shard", chance = 1.0}}]
"""

# A potion on a 1 s cooldown, so a resend after its cooldown reaches the ledger.
ITEMS = """
[items.dummy_shard]
name = "Dummy Shard"
stack = 20

[items.field_potion]
name = "Field Potion"
kind = "consumable"
stack = 5
use = "potion_heal"
cooldown = 1.0
cooldown_group = "field_potion"
"""

POTION_NUM = 2001  # abilities.potion_heal's wire number (etc/abilities.toml)


class DeathWatch(WorldClient):
    """
    A world client that calls C{onDeath(entity id)} from within the
    world.u that brings an entity's DEATH record, before anything else
    runs: the crash test kills the server at that very moment.
    """

    onDeath = None

    def received(self, m):
        seen = len(self.combatEvents)
        super().received(m)
        if self.onDeath is not None:
            for ev in self.combatEvents[seen:]:
                if ev.kind == R.DEATH:
                    self.onDeath(ev.b)


class CombatProcessTests(WorldProcessCase):
    """A world node in a real twistd process, on the test MariaDB and Redis, with the test's zone and NPC."""

    key = KEY
    dataFiles = {"zones": ZONES, "npcs": NPCS, "items": ITEMS}

    async def character(self, accountId=1):
        """@return: the id of a new level-1 warrior standing at the zone's spawn."""
        from mmoshard.world.test.dbfixture import makeCharacter

        return await makeCharacter(self.sql, accountId, f"Char{accountId}", "arena",
                                   SPAWN[0], 0.0, SPAWN[1])

    def client(self, proc, cid, accountId=1):
        token = issueAccessToken(KEY, accountId, f"login-{accountId}", 3600, reactor.seconds())
        c = DeathWatch(reactor, proc.address, token, cid, retries=20)
        self.addCleanup(lambda: c.session and c.session.drop())
        return c

    # --- what the client sees -------------------------------------------------------

    async def theNpc(self, c):
        """@return: the id of the NPC in view, once its enter record (kind "n", with health) came."""
        npcs = {}

        def seen():
            for m in c.events:
                if m["t"] == "world.u":
                    for s in m.get("e", ()):
                        if s[1] == "n":
                            npcs[s[0]] = s
            return npcs

        await waitFor(seen)
        [(nid, rec)] = npcs.items()
        self.assertGreaterEqual(nid, 2 ** 31)
        self.assertEqual(rec[2:5], ["Training Dummy", "training_dummy", 1])
        self.assertEqual((rec[5], rec[7]), NPC_AT)
        self.assertEqual(rec[10:13], [30, 30, 0])  # hp, hp_max, alive
        return nid

    def npcDead(self, c, nid):
        h = c.health.get(nid)
        return h is not None and h[2]

    async def kill(self, c, nid, timeout=15.0):
        """
        Cast the character's damage abilities (as the enter reply's C{combat}
        lists them) at C{nid} until it dies, waiting out cooldowns, the GCD
        and a lack of rage as the server's answers say.

        @return: the casts the server accepted.
        """
        abilities = [a for a in c.combat["abilities"]
                     if a["kind"] == "damage" and a["target"] in ("enemy", "area")]
        self.assertTrue(abilities, c.combat)
        accepted = []
        deadline = reactor.seconds() + timeout
        while not self.npcDead(c, nid):
            self.assertLess(reactor.seconds(), deadline, f"{nid} still alive: {c.health.get(nid)}")
            wait = 0.1
            for a in abilities:
                if self.npcDead(c, nid):
                    break
                try:
                    if a["target"] == "enemy":
                        ms = await c.cast(a["id"], target=nid)
                    else:
                        ms = await c.cast(a["id"])  # point-blank, around the caster
                except RequestError as e:
                    if e.code == "combat.on_cooldown":
                        wait = min(wait, e.retry_after)
                        continue
                    if e.code == "combat.no_resource":  # rage comes at 5 a second
                        continue
                    if e.code == "combat.invalid_target":
                        # Dead already: its DEATH record is on the way, if not here.
                        await waitFor(lambda: self.npcDead(c, nid), timeout=2.0)
                        break
                    raise
                accepted.append(a["id"])
                if ms:
                    await sleep(ms / 1000)
            await sleep(max(wait, 0.05))
        return accepted

    def death(self, c, nid):
        """@return: the DEATH records of C{nid} the client got."""
        return [ev for ev in c.combatEvents if ev.kind == R.DEATH and ev.b == nid]

    def lootEvents(self, c):
        return [m for m in c.events if m["t"] == "world.loot"]

    async def inventory(self, c):
        """@return: {slot: (item, count)} as world.inventory answers it."""
        reply = await c.session.request("world.inventory")
        return {s["slot"]: (s["item"], s["count"]) for s in reply["slots"]}

    async def useItem(self, c, slot, key):
        """@return: world.item.use's answer {applied, item, count}."""
        reply = await c.session.request("world.item.use", slot=slot, key=key)
        return {k: reply[k] for k in ("applied", "item", "count")}

    # --- what the database holds ------------------------------------------------------

    async def sqlInventory(self, cid):
        rows = await self.sql.runQuery(
            "SELECT slot, item_id, count FROM inventory WHERE character_id = ? ORDER BY slot", (cid,))
        return {int(s): (item, int(n)) for s, item, n in rows}

    async def ledger(self, cid):
        """@return: the character's ledger keys, sorted (the primary key makes each unique)."""
        rows = await self.sql.runQuery(
            "SELECT idem_key FROM progression_ledger WHERE character_id = ? ORDER BY idem_key", (cid,))
        return [r[0] for r in rows]

    async def progress(self, cid):
        rows = await self.sql.runQuery("SELECT level, exp FROM characters WHERE id = ?", (cid,))
        return tuple(int(v) for v in rows[0])

    def rewardKeys(self, keys):
        """@return: (kill keys, loot keys) of the test's NPC among ledger C{keys}."""
        return ([k for k in keys if k.startswith(f"kill:{SPAWN_ID}:")],
                [k for k in keys if k.startswith(f"loot:{SPAWN_ID}:")])

    async def killThenEnd(self, end):
        """
        Start the node, enter, and kill the NPC; C{end(proc)} is called in
        the callback that delivers the NPC's DEATH record.

        @return: (the ended process, the character id, the NPC id).
        """
        proc = await self.startWorld()
        cid = await self.character()
        c = self.client(proc, cid)
        await c.enter()
        nid = await self.theNpc(c)
        c.session.autoResume = False  # the process's end ends this session for good
        c.onDeath = lambda dead: dead == nid and end(proc)
        await self.kill(c, nid)
        await proc.ended
        await c.session.ended
        return proc, cid, nid

    # --- tests ---------------------------------------------------------------------

    async def test_killLootAndExpOnce(self):
        """
        A warrior entering over TCP sees the NPC next to it (kind "n", full
        health), kills it with its kit's damage abilities, gets one DEATH
        record and world.loot; world.inventory and the MariaDB inventory
        hold the item once, the ledger has one row per reward key, and the
        kill's exp is in characters.exp once.  The NPC respawns alive after
        its respawn time.
        """
        started = reactor.seconds()
        proc = await self.startWorld()
        cid = await self.character()
        c = self.client(proc, cid)
        reply = await c.enter()
        self.assertEqual(reply["zone"]["id"], "arena")
        self.assertEqual(c.combat["resource_kind"], "rage")
        nid = await self.theNpc(c)

        accepted = await self.kill(c, nid)
        self.assertTrue(accepted)
        self.assertEqual(len(self.death(c, nid)), 1)
        self.assertEqual(c.health[nid][0], 0)
        await waitFor(lambda: self.lootEvents(c))
        [loot] = self.lootEvents(c)
        self.assertEqual(loot["from"], nid)
        self.assertEqual(loot["items"], [{"item": "dummy_shard", "count": 1, "slot": 0}])
        # The loot's item add and the kill's exp grant each answer a world.progress,
        # in either order: wait for the exp's.
        await waitFor(lambda: [1, NPC_EXP] in [m["result"] for m in c.events
                                                if m["t"] == "world.progress"])

        self.assertEqual(await self.inventory(c), {0: ("dummy_shard", 1)})
        self.assertEqual(await self.sqlInventory(cid), {0: ("dummy_shard", 1)})
        kills, loots = self.rewardKeys(await self.ledger(cid))
        self.assertEqual(len(kills), 1)
        self.assertEqual(len(loots), 1)
        self.assertTrue(loots[0].endswith(":1:dummy_shard"), loots)  # the spawn's first death
        self.assertEqual(await self.progress(cid), (1, NPC_EXP))

        # Back after its respawn time, at full health, and nothing was granted again.
        await waitFor(lambda: c.health.get(nid) == [30, 30, False], timeout=RESPAWN + 5.0)
        self.assertEqual(len(self.lootEvents(c)), 1)
        self.assertEqual(await self.sqlInventory(cid), {0: ("dummy_shard", 1)})
        self.assertEqual(await self.progress(cid), (1, NPC_EXP))
        await c.leave()
        self.assertEqual(await proc.stop(), 0)
        self.log.info("kill test took {s:.1f}s", s=reactor.seconds() - started)

    async def test_kill9RightAfterTheKill(self):
        """
        The node is killed with kill -9 in the very callback that delivers
        the NPC's DEATH record.  Restarted, the character's loot and exp are
        there at most once (present exactly when the grant's ledger row
        committed before the kill; never doubled), and a second kill of the
        same spawn in the new process is rewarded again under new keys (the
        new boot id): two loot rows, one item more.
        """
        started = reactor.seconds()
        proc, cid, nid = await self.killThenEnd(lambda proc: proc.kill())
        self.assertEqual(proc.signal, 9)

        keys = await self.ledger(cid)
        kills, loots = self.rewardKeys(keys)
        self.assertLessEqual(len(kills), 1)
        self.assertLessEqual(len(loots), 1)
        held = await self.sqlInventory(cid)
        # The item is in the inventory exactly when its ledger row is (one transaction).
        self.assertEqual(held, {0: ("dummy_shard", 1)} if loots else {})
        self.assertEqual(await self.progress(cid), (1, NPC_EXP * len(kills)))
        self.log.info("kill -9 after the DEATH record: exp committed {exp}, loot committed {loot}",
                      exp=bool(kills), loot=bool(loots))

        proc2 = await self.startWorld()
        c2 = self.client(proc2, cid)
        await c2.enter()  # the same node id takes its own lease back at once
        self.assertEqual(await self.inventory(c2), held)
        # Nothing of the old death is granted by the new process.
        await sleep(0.5)
        self.assertEqual(await self.ledger(cid), keys)

        nid2 = await self.theNpc(c2)
        await self.kill(c2, nid2)
        await waitFor(lambda: self.lootEvents(c2))
        # As in test_killLootAndExpOnce: the loot's world.progress may
        # come first, so wait for the exp grant's own.
        exp2 = [1, NPC_EXP * (len(kills) + 1)]
        await waitFor(lambda: exp2 in [m["result"] for m in c2.events if m["t"] == "world.progress"])
        kills2, loots2 = self.rewardKeys(await self.ledger(cid))
        self.assertEqual((len(kills2), len(loots2)), (len(kills) + 1, len(loots) + 1))
        self.assertEqual(len({k.split(":")[3] for k in loots2}), len(loots2))  # boot ids differ
        self.assertEqual(await self.inventory(c2), {0: ("dummy_shard", 1 + len(loots))})
        self.assertEqual(await self.sqlInventory(cid), {0: ("dummy_shard", 1 + len(loots))})
        self.assertEqual(await self.progress(cid), (1, NPC_EXP * len(kills2)))
        self.assertEqual(await proc2.stop(), 0)
        self.log.info("kill -9 test took {s:.1f}s", s=reactor.seconds() - started)

    async def test_gracefulStopRightAfterTheKill(self):
        """
        A node told to stop (SIGTERM) in the very callback that delivers the
        NPC's DEATH record waits for the kill's grants before it exits: the
        exp and the loot are in MariaDB exactly once, and the restarted node
        shows the item once and grants nothing more.
        """
        started = reactor.seconds()
        proc, cid, nid = await self.killThenEnd(lambda proc: proc.transport.signalProcess("TERM"))
        self.assertEqual(proc.exitCode, 0, proc.output.decode(errors="replace")[-3000:])
        keys = await self.ledger(cid)
        kills, loots = self.rewardKeys(keys)
        self.assertEqual((len(kills), len(loots)), (1, 1))
        self.assertEqual(await self.sqlInventory(cid), {0: ("dummy_shard", 1)})
        self.assertEqual(await self.progress(cid), (1, NPC_EXP))

        proc2 = await self.startWorld()
        c2 = self.client(proc2, cid)
        await c2.enter()
        self.assertEqual(await self.inventory(c2), {0: ("dummy_shard", 1)})
        await sleep(0.5)
        self.assertEqual(await self.ledger(cid), keys)
        self.assertEqual(await self.progress(cid), (1, NPC_EXP))
        self.assertEqual(await proc2.stop(), 0)
        self.log.info("graceful stop test took {s:.1f}s", s=reactor.seconds() - started)

    async def withPotions(self, count):
        """@return: (the ready node, a character holding C{count} field potions in slot 3)."""
        proc = await self.startWorld()
        cid = await self.character()
        await self.sql.runInteraction(lambda cursor: cursor.execute(
            "INSERT INTO inventory (character_id, slot, item_id, count) VALUES (?, 3, ?, ?)",
            (cid, "field_potion", count)))
        return proc, cid

    def potionHeals(self, c):
        """@return: the HEAL records of a field potion on the character C{c} plays."""
        return [ev for ev in c.combatEvents
                if ev.kind == R.HEAL and ev.ability == POTION_NUM and ev.b == c.characterId]

    async def crash(self, proc, c):
        """kill -9 C{proc}; @return: when it and C{c}'s session are gone."""
        c.session.autoResume = False
        proc.kill()
        await proc.ended
        await c.session.ended

    async def test_itemUseResentKey(self):
        """
        world.item.use over the wire in a real process: a potion used, then
        resent with the same key at once (item.on_cooldown), after its
        cooldown (applied false, the first answer's count), and to a
        restarted process after kill -9 (applied false), is taken from the
        MariaDB inventory once, has one ledger row and heals once (one HEAL
        record of the potion).
        """
        started = reactor.seconds()
        proc, cid = await self.withPotions(3)
        c = self.client(proc, cid)
        await c.enter()
        self.assertEqual(await self.inventory(c), {3: ("field_potion", 3)})
        first = {"applied": True, "item": "field_potion", "count": 2}
        again = dict(first, applied=False)
        self.assertEqual(await self.useItem(c, 3, "use-1"), first)
        with self.assertRaises(RequestError) as e:
            await self.useItem(c, 3, "use-1")
        self.assertEqual(e.exception.code, "item.on_cooldown")
        await sleep(1.2)  # the potion's cooldown
        self.assertEqual(await self.useItem(c, 3, "use-1"), again)
        await waitFor(lambda: self.potionHeals(c))
        await sleep(0.3)  # a second HEAL would be in a later world.u
        self.assertEqual(len(self.potionHeals(c)), 1)
        self.assertEqual(await self.sqlInventory(cid), {3: ("field_potion", 2)})
        self.assertEqual(await self.ledger(cid), ["req:use:use-1"])

        await self.crash(proc, c)
        proc2 = await self.startWorld()
        c2 = self.client(proc2, cid)
        await c2.enter()
        self.assertEqual(c2.combat["cooldowns"], {})  # cooldowns are not persisted
        # In a process that never saw use-1, the ledger answers its first result.
        self.assertEqual(await self.useItem(c2, 3, "use-1"), again)
        await sleep(0.3)
        self.assertEqual(self.potionHeals(c2), [])
        self.assertEqual(await self.inventory(c2), {3: ("field_potion", 2)})
        self.assertEqual(await self.sqlInventory(cid), {3: ("field_potion", 2)})
        self.assertEqual(await self.ledger(cid), ["req:use:use-1"])
        self.assertEqual(await proc2.stop(), 0)
        self.log.info("item resend test took {s:.1f}s", s=reactor.seconds() - started)

    async def test_itemUseAnswerLostToKill9(self):
        """
        A world.item.use whose process is killed with kill -9 is, resent
        with its key to the restarted process, applied exactly once: killed
        as the request is sent, the resend applies it unless the dead
        process had committed it; killed once its ledger row is in MariaDB,
        the resend answers applied false (the slot's last potion: item
        null, count 0) and heals nothing.
        """
        started = reactor.seconds()
        proc, cid = await self.withPotions(2)
        c = self.client(proc, cid)
        await c.enter()
        sent = c.session.request("world.item.use", slot=3, key="use-a")
        sent.addErrback(lambda f: None)  # the answer is lost with the process
        await self.crash(proc, c)
        committed = "req:use:use-a" in await self.ledger(cid)
        self.log.info("kill -9 as world.item.use was sent: committed {committed}",
                      committed=committed)

        proc2 = await self.startWorld()
        c2 = self.client(proc2, cid)
        await c2.enter()
        self.assertEqual(await self.useItem(c2, 3, "use-a"),
                         {"applied": not committed, "item": "field_potion", "count": 1})
        self.assertEqual(await self.sqlInventory(cid), {3: ("field_potion", 1)})
        await sleep(0.3)
        self.assertEqual(len(self.potionHeals(c2)), 0 if committed else 1)

        await sleep(1.0)  # the potion's cooldown
        sent = c2.session.request("world.item.use", slot=3, key="use-b")
        sent.addErrback(lambda f: None)
        deadline = reactor.seconds() + 5.0
        while "req:use:use-b" not in await self.ledger(cid):
            self.assertLess(reactor.seconds(), deadline)
            await sleep(0.01)
        await self.crash(proc2, c2)

        proc3 = await self.startWorld()
        c3 = self.client(proc3, cid)
        await c3.enter()
        self.assertEqual(await self.useItem(c3, 3, "use-b"),
                         {"applied": False, "item": None, "count": 0})
        await sleep(0.3)
        self.assertEqual(self.potionHeals(c3), [])
        self.assertEqual(await self.inventory(c3), {})
        self.assertEqual(await self.sqlInventory(cid), {})
        self.assertEqual(await self.ledger(cid), ["req:use:use-a", "req:use:use-b"])
        self.assertEqual(await proc3.stop(), 0)
        self.log.info("item lost answer test took {s:.1f}s", s=reactor.seconds() - started)
