"""The W2 load generator: W1's walking bots, half of them fighting the NPCs in view with their class's rotation."""

import collections
import math
import struct
import sys
import time

from mmoshard.bots import w1
from mmoshard.bots.combat import NPC_BASE, Ability, Fighter, Kit
from mmoshard.paths import readDataTOML
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import frame
from mmoshard.world.combat.records import DEATH, RECORD, RECORD_SIZE, REVIVE

C_KEY = b"\xa1c"  # the msgpack key "c" (a world.u's combat records), to spot them undecoded
RELEASE_AFTER = 3.0  # seconds a dead bot lies before world.release
RELEASE_ID = 3
FIRST_CAST_ID = 10


class W2Stats(w1.Stats):
    """W1's counters plus casts, their refusals by code, effects, combat events and deaths."""

    def __init__(self):
        w1.Stats.__init__(self)
        self.steps = 0
        self.fighters = 0
        self.decoders = 0
        self.resetCombat()

    def resetCombat(self):
        self.casts = 0
        self.accepted = 0
        self.refused = collections.Counter()
        self.effects = []
        self.expired = 0
        self.events = 0
        self.deaths = 0
        self.releases = 0


class W2Bot(w1.Bot):
    """
    A W1 bot that dies and releases like a player; every other one (even
    index) fights with a L{Fighter} built from its class, as the world.enter
    reply names it.  Fighters decode every world.u (they need the NPCs and
    health in view); walkers only the sample W1 decodes, and otherwise look
    at the combat records of an update only for their own death.
    """

    def __init__(self, run, index):
        w1.Bot.__init__(self, run, index)
        self.fights = index % 2 == 0
        self.fighter = None
        self.moving = True
        self.dead = False
        self.releaseAt = None
        self.nextId = FIRST_CAST_ID
        self.cidBytes = struct.pack("<I", self.cid)

    def dataReceived(self, data):
        stats = self.run.stats
        frames = self.decoder.feed(data)
        if stats.measuring:
            stats.bytesIn += len(data)
            stats.msgsIn += len(frames)
        for p in frames:
            if self.entered and w1.WORLD_U in p:
                if self.fighter is not None or self.sampled:
                    self.update(decode(p))
                elif C_KEY in p and self.cidBytes in p:
                    self.fate(decode(p).get("c"))
                continue
            self.handle(decode(p))

    def update(self, m):
        """A decoded world.u: the fighter's view, the effects of its casts, movement latency."""
        run = self.run
        stats = run.stats
        now = run.now()
        f = self.fighter
        c = m.get("c")
        if f is not None:
            f.update(m, now)
            if f.effects:
                if stats.measuring:
                    stats.effects.extend(e.latency for e in f.effects)
                f.effects.clear()
            if f.dead != self.dead:
                self.died(now) if f.dead else self.revived(now)
        elif c:
            self.fate(c)
        if stats.measuring:
            if c:
                stats.events += len(c) // RECORD_SIZE
            blob = m.get("m")
            if blob and self.sampled:
                ms = w1.nowMillis()
                lat = stats.latencies
                for rec in w1.MOVE_RECORD.iter_unpack(blob):
                    if rec[0] < NPC_BASE:  # an NPC's ct is not a bot's clock
                        lat.append((ms - rec[5]) & 0xFFFFFFFF)

    def fate(self, c):
        """Its own death or revival in combat records C{c}."""
        if not c:
            return
        cid = self.cid
        for kind, _, _, _, b, _ in RECORD.iter_unpack(c):
            if b == cid:
                if kind == DEATH and not self.dead:
                    self.died(self.run.now())
                elif kind == REVIVE and self.dead:
                    self.revived(self.run.now())

    def died(self, now):
        self.dead = True
        self.moving = False
        self.releaseAt = now + RELEASE_AFTER
        if self.fighter is not None:
            self.fighter.dead = True
        if self.run.stats.measuring:
            self.run.stats.deaths += 1

    def revived(self, now):
        self.dead = False
        self.releaseAt = None
        if self.fighter is not None:
            self.fighter.revived()
        self.lastSend = now
        self.newHeading(now)
        self.moving = True

    def handle(self, m):
        t = m["t"]
        run = self.run
        if t == "world.cast":
            if self.fighter is not None and self.fighter.accepted(m.get("id"), m.get("cast_ms", 0),
                                                                  self.run.now()):
                run.stats.accepted += 1
            return
        if t == "error" and (m.get("id") or 0) >= FIRST_CAST_ID:
            if self.fighter is not None and self.fighter.refused(
                    m["id"], m.get("code"), m.get("retry_after"), self.run.now()):
                run.stats.refused[m.get("code")] += 1
            return
        if t == "world.release" or (t == "error" and m.get("id") == RELEASE_ID):
            # Alive at the graveyard (or it was not dead: combat.not_dead).
            if t == "world.release":
                self.x, self.z, self.k = m["x"], m["z"], m["k"]
            if self.dead:
                self.revived(run.now())
            return
        w1.Bot.handle(self, m)
        if t == "world.enter" and self.entered:
            self.lastSend = run.now()
            if self.fights and self.fighter is None:
                self.arm(m)

    def arm(self, reply):
        """Become a fighter with the kit of the class the world.enter reply names (if it can fight)."""
        run = self.run
        cls = reply.get("class")
        kit = run.kitFor(cls, reply.get("combat"))
        if kit is None or not kit.attacks:
            return
        self.fighter = f = Fighter(self.cid, kit, healer=run.roles.get(cls) == "healer")
        combat = reply.get("combat") or {}
        f.hp, f.hpMax, f.res = combat.get("hp"), combat.get("hp_max"), combat.get("resource")
        if combat.get("dead"):
            self.died(run.now())
        run.stats.fighters += 1
        if not self.sampled:
            run.stats.decoders += 1

    def step(self, now, ct):
        """One 5 Hz turn. @return: True when it sent a move."""
        if self.dead:
            self.lastSend = now
            if self.releaseAt is not None and now >= self.releaseAt:
                self.releaseAt = now + 10.0  # again, if no revival comes
                self.transport.write(frame(encode({"t": "world.release", "id": RELEASE_ID})))
                if self.run.stats.measuring:
                    self.run.stats.releases += 1
            return False
        f = self.fighter
        if f is None:
            w1.Bot.step(self, now, ct)
            return True
        act = f.decide(self.x, self.z, self.moving, now)
        what = act[0]
        if what == "idle":
            if not self.moving or self.turnAt == math.inf:
                self.newHeading(now)
                self.moving = True
            w1.Bot.step(self, now, ct)
            return True
        if what == "walk":
            dx, dz = act[1] - self.x, act[2] - self.z
            d = math.hypot(dx, dz) or 1.0
            self.vx, self.vz = w1.SPEED * dx / d, w1.SPEED * dz / d
            self.turnAt = math.inf  # no random turns on the way
            self.moving = True
            w1.Bot.step(self, now, ct)
            return True
        self.lastSend = now
        if what == "stand":
            if not self.moving:
                return False
            self.moving = False
            self.vx = self.vz = 0.0
            self.transport.write(w1.packMove(self.x, self.z, 0.0, 0.0, ct, self.k))
            return True
        _, ability, target, x, z = act
        request = {"t": "world.cast", "id": self.nextId, "ability": ability.id}
        if target is not None:
            request["target"] = target
        if x is not None:
            request["x"], request["z"] = x, z
        self.transport.write(frame(encode(request)))
        f.sent(self.nextId, ability, now, target)
        self.nextId = self.nextId + 1 if self.nextId < 0x7FFFFFFF else FIRST_CAST_ID
        self.run.stats.casts += 1
        return False


class W2Run(w1.Run):
    """One W2 run: W1's ramp, warm-up and window, with combat figures in the summary."""

    tag = "w2"
    workload = "W2"
    botClass = W2Bot

    def __init__(self, reactor, opts):
        w1.Run.__init__(self, reactor, opts)
        self.now = time.monotonic  # the bots' clock (the tests give theirs)
        self.stats = W2Stats()
        self.roles = classRoles(opts.classes_file)
        self.data = loadGameData(opts)
        self.kits = {}

    def kitFor(self, cls, combat):
        """
        The L{Kit} of class C{cls}: the abilities the world.enter reply's
        C{combat.abilities} lists, completed from the game data (durations).
        No C{combat} field: the zone has no combat or the class no kit.
        @return: it, or None (nothing to cast).
        """
        if cls in self.kits:
            return self.kits[cls]
        specs = self.data.abilities if self.data is not None else {}
        abilities = []
        for d in (combat or {}).get("abilities") or ():
            spec = specs.get(d.get("id"))
            if spec is not None or "num" in d:
                abilities.append(Ability.fromReply(d, spec))
        kit = self.kits[cls] = Kit.build(cls, abilities) if abilities else None
        if kit is None or not kit.attacks:
            print(f"[w2] class {cls!r}: no attack known; its bots only walk", file=sys.stderr,
                  flush=True)
        return kit

    def send(self):
        slot = self.slots[self.slot]
        self.slot = (self.slot + 1) % w1.SLOTS
        now = self.now()
        ct = w1.nowMillis()
        moved = 0
        for bot in slot:
            if bot.step(now, ct):
                moved += 1
        self.stats.sent += moved
        self.stats.steps += len(slot)

    def beginWindow(self):
        self.stats.resetCombat()
        self.steps0 = self.stats.steps
        for bot in self.bots:
            if bot.fighter is not None:
                bot.fighter.expired = bot.fighter.kills = 0
        w1.Run.beginWindow(self)

    def summary(self):
        out = w1.Run.summary(self)
        s = self.stats
        window = out["window_s"] or 1.0
        decoders = max(1, s.decoders + sum(1 for b in self.bots if b.sampled and b.entered))
        eff = sorted(s.effects)

        def q(p):
            return round(eff[min(len(eff) - 1, int(p * len(eff)))] * 1000.0, 1) if eff else -1

        refused = sum(s.refused.values())
        out.update({
            "fighters": s.fighters, "steps_s": round((s.steps - self.steps0) / window, 1),
            "casts_s": round(s.casts / window, 2), "casts_ok_s": round(s.accepted / window, 2),
            "casts_refused_s": round(refused / window, 2),
        })
        for code, count in sorted(s.refused.items()):
            out[f"refused_{str(code).rpartition('.')[2]}_s"] = round(count / window, 2)
        out.update({
            "cast_effect_p50_ms": q(0.50), "cast_effect_p99_ms": q(0.99),
            "cast_effect_samples": len(eff),
            "cast_no_effect": sum(b.fighter.expired for b in self.bots if b.fighter is not None),
            "combat_events_per_client_s": round(s.events / decoders / window, 2),
            "combat_bytes_per_client_s": round(s.events * RECORD_SIZE / decoders / window, 1),
            "deaths": s.deaths, "releases": s.releases,
            "kills": sum(b.fighter.kills for b in self.bots if b.fighter is not None),
        })
        return out


def classRoles(path):
    """@return: class id -> role (tank, healer, damage) from the classes file."""
    doc = readDataTOML(path, SystemExit)
    return {cls: spec.get("role", "") for cls, spec in doc.get("classes", {}).items()}


def loadGameData(opts):
    """The game data (abilities and kits) from the data files, or None where it cannot be read."""
    return gameData(opts.abilities_file, opts.classes_file)


def gameData(abilitiesFile, classesFile):
    """L{loadGameData} from the abilities and classes files (also the C generator's: bench/w1gen.py)."""
    try:
        from mmoshard.world.combat import loading
    except ImportError:
        return None
    try:
        return loading.loadGameData(abilitiesFile, "etc/npcs.toml", "etc/items.toml", classesFile)
    except Exception as e:  # the enter reply may still carry what the bots need
        print(f"[w2] game data not loaded ({e}); kits from the world.enter reply only",
              file=sys.stderr, flush=True)
        return None


def parseArgs(argv):
    p = w1.argumentParser("python -m mmoshard.bots w2", __doc__)
    p.add_argument("--abilities-file", default="etc/abilities.toml",
                   help="ability data, for what the world.enter reply does not say")
    p.add_argument("--classes-file", default="etc/classes.toml", help="classes and their roles")
    return w1.checkArgs(p, p.parse_args(argv))


def main(argv):
    return w1.runWith(parseArgs(argv), W2Run)
