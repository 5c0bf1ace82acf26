"""The C W2 generator (bench/w1gen.c --workload W2, bench/w2mind.c) against the Python W2 bots: the same decisions on the same inputs, and both fight a real world node."""

import importlib.util
import os
import random
import shutil
import struct
import subprocess
import sys

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from mmoshard.bots.combat import NPC_BASE, Ability, Fighter, Kit
from mmoshard.bots.w2 import classRoles, gameData
from mmoshard.paths import readDataTOML
from mmoshard.testing import cannotRun, checkoutRoot, repoRoot
from mmoshard.world.combat import errors
from mmoshard.world.combat.records import (
    AURA_ON, CAST_FINISH, CAST_INTERRUPT, CAST_START, DAMAGE, DEATH, EVADE, HEAL, HEALTH, RECORD,
    RESOURCE, REVIVE)
from mmoshard.world.test.worldprocess import WorldProcessCase

MOVE = struct.Struct("<IffhhI")
CODES = (errors.ON_COOLDOWN, errors.OUT_OF_RANGE, errors.INVALID_TARGET, errors.NO_RESOURCE,
         errors.BUSY, errors.DEAD, errors.UNKNOWN_ABILITY)
KINDS = (CAST_START, CAST_FINISH, CAST_INTERRUPT, DAMAGE, HEAL, HEALTH, AURA_ON, DEATH, REVIVE,
         RESOURCE, EVADE)


def benchModule():
    """@return: bench/w1gen.py (the C generator's Python side), imported from the checkout."""
    path = os.path.join(checkoutRoot(), "bench", "w1gen.py")
    if not os.path.exists(path):
        cannotRun(f"{path} is absent (an installed package without the checkout)")
    if not shutil.which("gcc"):
        cannotRun("gcc is not installed: the C generator cannot be built")
    spec = importlib.util.spec_from_file_location("w1gen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def g(v):
    """A double as C's %.17g writes it."""
    return format(v, ".17g")


class Script:
    """
    A W2 fighter's inputs written as bench/w2mindcheck.c's script, applied
    as they are written to a Python L{Fighter}, whose answers are written
    as the C program prints them.
    """

    def __init__(self, abilities, cid, healer):
        self.lines = []
        self.out = []
        self.abilities = abilities
        for a in abilities:
            self.lines.append(" ".join(["ability", a.id, str(a.num), a.kind, a.target]
                                       + [g(float(v)) for v in (a.range, a.radius, a.cast,
                                                                a.cooldown, a.gcd, a.cost,
                                                                a.duration)]))
        self.f = Fighter(cid, Kit.build("check", abilities), healer=healer)
        self.lines.append(f"fighter {cid} {int(healer)}")
        self.byId = {a.id: a for a in abilities}

    def self_(self, hp, hpMax, res):
        f = self.f
        f.hp, f.hpMax, f.res = hp, hpMax, res
        self.lines.append(f"self {int(hp is not None)} {hp or 0} {hpMax} {int(res is not None)} "
                          f"{res or 0}")

    def enter(self, eid, npc, x, z, hp=None, hpMax=100, dead=False, evading=None):
        rec = [eid, "n" if npc else "p", "name", "cls", 1, x, 0.0, z, 0.0, 0.0]
        if hp is not None:
            rec += [hp, hpMax, int(dead)]
            if evading is not None:
                rec.append(int(evading))
        self.f.enter(rec)
        self.lines.append(f"enter {eid} {int(npc)} {g(x)} {g(z)} {int(hp is not None)} {hp or 0} "
                          f"{hpMax} {int(dead)} {int(evading is not None)} {int(evading or 0)}")

    def leave(self, eid):
        self.f.update({"l": [eid]}, 0.0)
        self.lines.append(f"leave {eid}")

    def moves(self, blob):
        self.f.update({"m": blob}, 0.0)
        self.lines.append(f"moves {blob.hex()}")

    def combat(self, blob, now):
        self.f.update({"c": blob}, now)
        self.lines.append(f"combat {g(now)} {blob.hex()}")

    def decide(self, x, z, moving, now):
        act = self.f.decide(x, z, moving, now)
        self.lines.append(f"decide {g(x)} {g(z)} {int(moving)} {g(now)}")
        if act[0] == "walk":
            self.out.append(f"do walk {g(act[1])} {g(act[2])}")
        elif act[0] == "cast":
            _, a, target, cx, cz = act
            self.out.append(f"do cast {a.id} {'-' if target is None else target} "
                            f"{'-' if cx is None else g(cx)} {'-' if cz is None else g(cz)}")
        else:
            self.out.append(f"do {act[0]}")
        return act

    def sent(self, req, ability, now, target):
        self.f.sent(req, ability, now, target)
        self.lines.append(f"sent {req} {ability.id} {g(now)} {int(target is not None)} {target or 0}")

    def accepted(self, req, castMs, now):
        ok = self.f.accepted(req, castMs, now) is not None
        self.lines.append(f"accepted {req} {g(castMs)} {g(now)}")
        self.out.append(f"accepted {int(ok)}")

    def refused(self, req, code, retry, now):
        ok = self.f.refused(req, code, retry, now) is not None
        self.lines.append(f"refused {req} {code} {int(retry is not None)} {g(retry or 0.0)} {g(now)}")
        self.out.append(f"refused {int(ok)}")

    def revived(self):
        self.f.revived()
        self.lines.append("revived")

    def state(self):
        f = self.f
        share = g(f.hp / f.hpMax) if f.hp is not None and f.hpMax else "-"
        if f.waiting is None:
            waiting = "-"
        else:
            req, a, at, target = f.waiting
            waiting = f"{req}/{a.id}/{g(at)}/{'-' if target is None else target}"
        line = [f"state dead={int(f.dead)} target={'-' if f.target is None else f.target}",
                f"kills={f.kills} expired={f.expired} events={f.events} self={share}",
                f"res={'-' if f.res is None else g(f.res)} reach={g(f.reach)}",
                f"next={g(f.nextCast)} busy={g(f.busyUntil)} waiting={waiting} ready"]
        line += [g(f.readyAt.get(a.id, 0.0)) for a in self.abilities]
        line.append("pending")
        line += [f"{num}@{g(at)}" for num, at in sorted(f.pending.items())]
        line.append("effects")
        line += [g(e.latency) for e in f.effects]
        f.effects.clear()
        self.out.append(" ".join(line))
        seen = [(eid, 1, s) for eid, s in f.npcs.items()] + [(eid, 0, s) for eid, s in f.players.items()]
        for eid, npc, s in sorted(seen, key=lambda t: t[0]):
            self.out.append(f"seen {eid} {npc} {g(s.x)} {g(s.z)} {g(s.hurt())} {int(s.dead)} "
                            f"{int(s.evading)}")
        self.lines.append("state")


def play(script, rng, steps):
    """
    C{steps} turns of a fighter among NPCs and players coming, going,
    moving, fighting and dying, at a random walk of its own, answering its
    casts (accepted, refused with any code, or never).
    """
    cid = script.f.cid
    npcs = [NPC_BASE + i for i in range(6)]
    players = [cid] + [cid + i for i in range(1, 6)]
    pool = npcs + players
    nums = [a.num for a in script.abilities] + [0, 999]
    x, z, moving, now, req = 20.0, 20.0, True, 1000.0, 10
    replies = []
    script.self_(rng.choice([None, rng.randint(1, 100)]), 100, rng.choice([None, rng.randint(0, 100)]))
    for _ in range(steps):
        now += rng.uniform(0.05, 0.4)
        r = rng.random()
        if r < 0.15:
            hp = rng.choice([None, rng.randint(0, 100), rng.randint(0, 100)])
            eid = rng.choice(pool)
            script.enter(eid, eid >= NPC_BASE, rng.uniform(0, 40), rng.uniform(0, 40),
                         hp, 100, rng.random() < 0.1,
                         None if hp is None or rng.random() < 0.3 else rng.random() < 0.1)
        elif r < 0.2:
            script.leave(rng.choice(pool))
        elif r < 0.4:
            script.moves(b"".join(MOVE.pack(rng.choice(pool), rng.uniform(0, 40), rng.uniform(0, 40),
                                            0, 0, 0) for _ in range(rng.randint(1, 4))))
        elif r < 0.7:
            recs = []
            for _ in range(rng.randint(1, 4)):
                kind = rng.choice(KINDS)
                value = rng.randint(0, 1) if kind == EVADE else rng.randint(-5, 120)
                a, b = rng.choice(pool + [cid, 0]), rng.choice(pool + [cid, 0])
                recs.append(RECORD.pack(kind, 0, rng.choice(nums), a, 100 if kind == HEALTH else b,
                                        value))
            script.combat(b"".join(recs), now)
        if replies and rng.random() < 0.5:
            rid, ability = replies.pop(0)
            if rng.random() < 0.1:
                rid += 1  # a stale or unknown request id
            if rng.random() < 0.6:
                script.accepted(rid, ability.cast * 1000.0, now)
            else:
                script.refused(rid, rng.choice(CODES), rng.choice([None, rng.uniform(0, 3)]), now)
        if script.f.dead and rng.random() < 0.2:
            script.revived()
        act = script.decide(x, z, moving, now)
        if act[0] == "walk":
            dx, dz = act[1] - x, act[2] - z
            d = max(1.0, (dx * dx + dz * dz) ** 0.5)
            x, z, moving = x + dx / d, z + dz / d, True
        elif act[0] == "idle":
            x, z, moving = x + rng.uniform(-1, 1), z + rng.uniform(-1, 1), True
        elif act[0] == "stand":
            moving = False
        elif rng.random() < 0.9:
            script.sent(req, act[1], now, act[2])
            if rng.random() < 0.9:
                replies.append((req, act[1]))
            req += 1
        script.state()


class MindTests(TestCase):
    """bench/w2mind.c decides as mmoshard/bots/combat.py's Fighter does."""

    def test_same_decisions_every_class(self):
        """On the same random inputs, every class's C fighter says what the Python one says: casts, walks, targets, state."""
        w1gen = benchModule()
        binary = w1gen.buildMindCheck()
        etc = os.path.join(checkoutRoot(), "etc")
        data = gameData(os.path.join(etc, "abilities.toml"), os.path.join(etc, "classes.toml"))
        roles = classRoles(os.path.join(etc, "classes.toml"))
        self.assertTrue(data.kits)
        casts = set()
        for seed, cls in enumerate(sorted(data.kits) * 2):
            abilities = [Ability.fromSpec(data.abilities[a]) for a in data.kits[cls].abilities
                         if a in data.abilities]
            script = Script(abilities, 7, roles.get(cls) == "healer")
            play(script, random.Random(seed), 400)
            out = subprocess.run([binary], input="\n".join(script.lines) + "\n", text=True,
                                 capture_output=True, check=True).stdout.splitlines()
            for i, (c, p) in enumerate(zip(out, script.out)):
                if c != p:
                    self.fail(f"{cls} (seed {seed}), output line {i}:\n  C:      {c}\n  Python: {p}")
            self.assertEqual(len(out), len(script.out), cls)
            casts.update(line.split()[2] for line in script.out if line.startswith("do cast"))
        # The scripts reached every kind of decision.
        self.assertGreater(len(casts), 10)


KEY = "w2gen-test-token-key-0123456789abcdef"
BOTS = 8
# A small zone: three packs of two weak wolves near the middle, the bots
# around them, all in view of each other.
ZONES = """
[zones.w2t]
size = [80.0, 80.0]
spawns = [[40.0, 0.0, 40.0]]
graveyard = [40.0, 0.0, 40.0]
aoi_radius = 50.0
tick_rate = 10.0
max_speed = 7.0
""" + "".join(f"""
[[zones.w2t.packs]]
members = ["w2t_wolf", "w2t_wolf"]
at = [{x}, {z}]
spread = 3.0
respawn = 2.0
""" for x, z in ((30.0, 30.0), (50.0, 50.0), (30.0, 50.0)))
NPCS = """
[npcs.w2t_wolf]
name = "Wolf"
level = 1
health = 40
damage = [1, 1]
attack_speed = 2.0
attack_range = 3.0
speed = 6.0
aggro_radius = 10.0
social_radius = 8.0
leash = 40.0
exp = 10
loot = [{item = "w2t_pelt", chance = 0.5}]
"""
ITEMS = """
[items.w2t_pelt]
name = "Pelt"
stack = 20
"""


def insertBots(cursor, classes, n):
    """Accounts and characters 1..C{n} (bot i is account and character i + 1), their classes in turn."""
    rng = random.Random(5)
    for i in range(1, n + 1):
        cursor.execute("INSERT INTO accounts (id, username, username_lower, password_hash, created_at) "
                       "VALUES (?, ?, ?, 'x', 0)", (i, f"bot{i}", f"bot{i}"))
        cursor.execute(
            "INSERT INTO characters (id, account_id, name, name_lower, class, zone, x, y, z, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'w2t', ?, 0, ?, 0)",
            (i, i, f"Bot{i}", f"bot{i}", classes[(i - 1) % len(classes)], rng.uniform(25, 55),
             rng.uniform(25, 55)))


class GeneratorRunTests(WorldProcessCase):
    """The C generator and the Python bots, in turn, play W2 against one real world node."""

    timeout = 180
    key = KEY
    dataFiles = {"zones": ZONES, "npcs": NPCS, "items": ITEMS}

    async def generate(self, command):
        """@return: the summary line's fields of a generator run (C{command} after the executable)."""
        out, err, code = await getProcessOutputAndValue(
            command[0], command[1:], env={**os.environ, "PYTHONPATH": repoRoot()}, path=self.tmp)
        lines = [line for line in out.decode().splitlines() if line.startswith("workload=W2 ")]
        self.assertEqual((code, len(lines)), (0, 1), (out + err).decode()[-3000:])
        return dict(kv.split("=", 1) for kv in lines[0].split())

    async def test_both_generators_fight(self):
        """Both generators log every bot in, arm the same fighters, get casts accepted with their effects seen, and kill NPCs; nobody is disconnected."""
        w1gen = benchModule()
        classes = list(readDataTOML("etc/classes.toml", AssertionError)["classes"])
        await self.sql.runInteraction(insertBots, classes, BOTS)
        proc = await self.startWorld(start_zone="w2t")
        handshakes, data = os.path.join(self.tmp, "handshakes"), os.path.join(self.tmp, "w2data")
        w1gen.writeHandshakes(handshakes, BOTS, 1, key=KEY)
        w1gen.writeGameData(data)
        common = ["--address", proc.address, "--token-key", KEY, "--count", str(BOTS),
                  "--size", "80", "--warmup", "2", "--duration", "8", "--rate", "50"]
        results = {
            "c": await self.generate([w1gen.buildGenerator()] + common + [
                "--workload", "W2", "--game-data", data, "--handshakes", handshakes]),
            "python": await self.generate([sys.executable, "-m", "mmoshard.bots", "w2"] + common),
        }
        for name, r in results.items():
            why = (name, r)
            self.assertEqual((r["entered"], r["disconnects"], r["errors"], r["failed"]),
                             (str(BOTS), "0", "0", "0"), why)
            self.assertGreater(float(r["casts_ok_s"]), 0, why)
            self.assertGreater(int(r["cast_effect_samples"]), 0, why)
            self.assertGreater(int(r["kills"]), 0, why)
            self.assertGreater(float(r["combat_events_per_client_s"]), 0, why)
            self.assertNotIn("refused_unknown_ability_s", r, why)
        self.assertEqual(results["c"]["fighters"], results["python"]["fighters"])
        self.assertGreater(int(results["c"]["fighters"]), 0)
