"""The raid load generator: parties of five formed through chat enter an instance, kill its bosses, leave, and start again as fresh characters."""

import collections
import resource
import sys
import time

from twisted.internet.protocol import ClientFactory

from mmoshard.bots import w1, w2
from mmoshard.bots.combat import Ability, Kit
from mmoshard.bots.raidbot import RaidBot, partyOf
from mmoshard.bots.raidmind import PARTY_ROLES, PartyMind, route
from mmoshard.tokens import issueAccessToken
from mmoshard.world.instances import errors as ierrors

STUCK = 120.0  # seconds a party may spend forming, entering or leaving before it gives up
RETRY = 2.0  # seconds before a refused request is sent again
MAX_RETRIES = 15
NEXT_AFTER = 1.0  # seconds between a generation's last close and the next one's connections
# Instance entry refusals worth a retry (the others end the generation).
RETRIED = frozenset((ierrors.NO_CAPACITY, ierrors.UNAVAILABLE, ierrors.NOT_LEADER,
                     "server.unavailable", "world.character_busy"))


class RaidStats:
    """Counters of the whole run (duplicates, totals) and of the measured window."""

    def __init__(self):
        self.connected = 0
        self.entered = 0
        self.failed = 0
        self.disconnects = 0
        self.steps = 0
        self.duplicates = 0
        self.killsTotal = 0
        self.rewardsTotal = 0
        self.clearsTotal = 0
        self.givenUp = 0  # generations given up (refused, broken or stuck), over the run
        self.stepErrors = 0  # bot turns that raised (a bug), over the run
        self.errors = collections.Counter()  # error code -> count, over the run
        self.window()

    def window(self):
        """Start the window's counts afresh."""
        self.casts = 0
        self.accepted = 0
        self.refused = collections.Counter()
        self.effects = []
        self.kills = 0
        self.wipes = 0
        self.resets = 0
        self.rewards = 0
        self.items = 0
        self.progress = 0
        self.deaths = 0
        self.releases = 0
        self.clears = 0
        self.entries = 0
        self.fights = []
        self.stuck = 0
        self.bytesIn = 0
        self.fighting = []


class RaidParty:
    """
    One party slot of the run: five bots of one generation at a time
    (character ids from L{characterId}), formed into a chat party by their
    leader (the tank), in and out of an instance, then the next generation.

    States: C{connecting} (until all five said chat.hello), C{forming}
    (the leader's chat.party.create and invites), C{entering} (the leader's
    world.instance.enter, then the others'), C{inside}, C{leaving}
    (world.instance.leave, chat.party.leave, world.leave, close),
    C{done} (no generation left).
    """

    def __init__(self, run, index, bosses=(), waypoints=()):
        self.run = run
        self.index = index
        self.mind = PartyMind(bosses, waypoints)
        self.generation = -1
        self.bots = []
        self.state = "idle"
        self.since = 0.0
        self.partyId = None
        self.leader = None
        self.entries = 0  # refused instance entries of this generation (retries are bounded)
        self.everInside = False

    def setState(self, state):
        self.state = state
        self.since = self.run.now()

    # --- generations ---------------------------------------------------------------

    def nextGeneration(self):
        """Connect the next generation's five characters (or be done)."""
        run = self.run
        self.generation += 1
        if self.generation >= run.opts.clears:
            self.setState("done")
            run.partyDone(self)
            return
        self.mind.reset()
        self.mind.setMembers([])
        self.partyId = None
        self.leader = None
        self.entries = 0
        self.bots = []
        self.setState("connecting")
        for slot in range(len(PARTY_ROLES)):
            run.connect(self, slot, characterId(run.opts, self.index, slot, self.generation))

    def joined(self, bot):
        """C{bot} is connected (its protocol built)."""
        self.bots.append(bot)
        self.bots.sort(key=lambda b: b.slot)

    def ready(self, bot):
        """C{bot} is in the world and said chat.hello: once all five are, the leader forms the party."""
        if self.state != "connecting" or len(self.bots) < len(PARTY_ROLES):
            return
        if not all(b.chatReady for b in self.bots):
            return
        members = partyOf(self.bots, self.run.roles, self.mind)
        self.mind.setMembers(members)
        self.leader = next(b for b in self.bots if b.member.role == "tank")
        self.setState("forming")
        self.leader.request("chat.party.create", {})

    def closed(self, bot):
        """C{bot}'s connection is gone (on purpose or not)."""
        if bot in self.bots:
            self.bots.remove(bot)
        if self.state == "done":
            return
        if not self.bots and self.state in ("leaving", "connecting", "forming", "entering",
                                            "inside"):
            self.setState("between")
            self.run.reactor.callLater(NEXT_AFTER, self.nextGeneration)

    def abandon(self, why):
        """Give this generation up (refused, stuck, broken): everyone leaves its party and the world."""
        self.run.stats.givenUp += 1
        print(f"[raid] party {self.index} generation {self.generation}: giving up ({why})",
              file=sys.stderr, flush=True)
        self.setState("leaving")
        for b in list(self.bots):
            b.quit()
        if not self.bots:
            self.closed(None)

    # --- chat ---------------------------------------------------------------------------

    def created(self, bot, party):
        """The leader's party exists: invite the four others by name."""
        self.partyId = party["id"]
        for b in self.bots:
            if b is not bot:
                bot.request("chat.party.invite", {"name": b.name})

    def invited(self, bot, m):
        """An invitation to C{bot}: accepted when it comes from this party's leader."""
        if self.leader is not None and m.get("from") == self.leader.cid:
            bot.invite = m["party_id"]
            bot.request("chat.party.accept", {"party_id": bot.invite})

    def partyUpdate(self, bot, m):
        """A chat.party.update: the leader enters the instance once all five are members."""
        party = m.get("party")
        if (bot is not self.leader or self.state != "forming" or not party
                or party.get("id") != self.partyId):
            return
        if len(party.get("members", ())) >= len(self.bots) == len(PARTY_ROLES):
            self.setState("entering")
            self.enter(self.leader)

    # --- the instance ----------------------------------------------------------------

    def enter(self, bot):
        bot.request("world.instance.enter", {"template": self.run.opts.template})

    def zoned(self, bot, inside):
        """C{bot} arrived in a zone: inside the instance, or back outside."""
        if inside:
            if bot is self.leader and self.state == "entering":
                for b in self.bots:
                    if b is not bot and not b.member.inside:
                        self.enter(b)
            if self.state == "entering" and all(b.member.inside for b in self.bots):
                self.setState("inside")
                self.everInside = True
                self.run.stats.entries += 1
        elif self.state == "leaving":
            bot.quit()

    def enterRefused(self, bot, code, retryAfter):
        """C{bot}'s world.instance.enter was refused with C{code}."""
        self.run.stats.errors[code] += 1
        if self.state != "entering":
            return
        self.entries += 1
        if code in RETRIED and self.entries <= MAX_RETRIES:
            self.run.reactor.callLater(retryAfter or RETRY, self.retryEnter, bot)
            return
        self.abandon(f"world.instance.enter: {code}")

    def retryEnter(self, bot):
        if self.state == "entering" and bot in self.bots and not bot.member.inside:
            self.enter(bot)

    def encounter(self, m):
        """A world.encounter event (each member gets a copy: the mind counts each boss once)."""
        run = self.run
        what = self.mind.encounter(m, run.now())
        stats = run.stats
        if what == "kill":
            stats.kills += 1
            stats.killsTotal += 1
            for _, seconds in self.mind.newKills:
                if seconds is not None:
                    stats.fights.append(seconds)
            del self.mind.newKills[:]
        elif what == "reset":
            stats.resets += 1

    def everySecond(self, now):
        """Leave when cleared; give up a generation stuck outside a fight."""
        if self.state == "inside":
            if self.mind.shouldLeave(now):
                self.run.stats.clears += 1
                self.run.stats.clearsTotal += 1
                self.setState("leaving")
                for b in self.bots:
                    b.request("world.instance.leave", {})
            elif now - self.since > self.run.opts.max_clear:
                self.run.stats.stuck += 1
                self.abandon(f"not cleared after {self.run.opts.max_clear:.0f} s")
        elif self.state in ("connecting", "forming", "entering", "leaving"):
            if now - self.since > STUCK:
                self.run.stats.stuck += 1
                if self.state == "leaving":
                    for b in list(self.bots):
                        b.closing = True  # given up on purpose: not a disconnect
                        b.transport.abortConnection()
                else:
                    self.abandon(f"{self.state} for {STUCK:.0f} s")

    def fightingBoss(self):
        return self.state == "inside" and bool(self.mind.pulledAt)


def cpuSeconds():
    """CPU seconds this process used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def characterId(opts, party, slot, generation):
    """Bot C{slot} of party C{party} in C{generation} is account and character this id."""
    size = len(PARTY_ROLES)
    return opts.first_id + generation * opts.parties * size + party * size + slot


def partyClasses(roles, index):
    """
    The five classes of party C{index}: a tank, a healer and three damage
    dealers, going round the classes of each role (by party for the first
    two, by slot and party for the damage dealers).
    """
    byRole = {}
    for cls, role in roles.items():
        byRole.setdefault(role, []).append(cls)
    out = []
    damage = 0
    for role in PARTY_ROLES:
        pool = byRole.get(role) or sorted(roles)
        if role == "damage":
            out.append(pool[(index + damage) % len(pool)])
            damage += 1
        else:
            out.append(pool[index % len(pool)])
    return out


def characterPlan(parties, generations, roles, firstId=1):
    """Every character a run uses: a list of (character id, class), for the bench to create."""
    import argparse

    opts = argparse.Namespace(first_id=firstId, parties=parties)
    plan = []
    for g in range(generations):
        for p in range(parties):
            for slot, cls in enumerate(partyClasses(roles, p)):
                plan.append((characterId(opts, p, slot, g), cls))
    return plan


class BotFactory(ClientFactory):
    def __init__(self, run, party, slot, cid):
        self.run = run
        self.party = party
        self.slot = slot
        self.cid = cid

    def buildProtocol(self, addr):
        bot = RaidBot(self.run, self.party, self.slot, self.cid)
        self.party.joined(bot)
        return bot

    def clientConnectionFailed(self, connector, reason):
        self.run.stats.failed += 1


class RaidRun:
    """One raid run: parties ramped in, a warm-up, the measured window, the summary line."""

    tag = "raid"
    def __init__(self, reactor, opts):
        self.reactor = reactor
        self.opts = opts
        self.host, _, port = opts.address.replace("tcp:", "").rpartition(":")
        self.port = int(port)
        self.now = time.monotonic
        self.stats = RaidStats()
        self.roles = w2.classRoles(opts.classes_file)
        self.data = w2.loadGameData(opts)
        self.kits = {}
        spec = loadTemplate(opts)
        bosses = tuple(b.id for b in spec.bosses) if spec is not None else ()
        waypoints = route(spec) if spec is not None else ()
        self.parties = [RaidParty(self, i, bosses, waypoints) for i in range(opts.parties)]
        self.slots = [[] for _ in range(w1.SLOTS)]
        self.slot = 0
        self.stopping = False
        self.started = time.monotonic()
        self.phase = "ramp"
        self.window0 = None
        self.ended = False

    # --- bots -------------------------------------------------------------------------

    def token(self, cid):
        return issueAccessToken(self.opts.token_key, cid, f"bot-{cid}", 86400, time.time())

    def connect(self, party, slot, cid):
        self.reactor.connectTCP(self.host, self.port, BotFactory(self, party, slot, cid), 30)

    def kitFor(self, cls, combat):
        """The L{Kit} of class C{cls} from the reply's C{combat.abilities}, completed from the game data; None without one."""
        if cls in self.kits:
            return self.kits[cls]
        specs = self.data.abilities if self.data is not None else {}
        abilities = []
        for d in (combat or {}).get("abilities") or ():
            spec = specs.get(d.get("id"))
            if spec is not None or "num" in d:
                abilities.append(Ability.fromReply(d, spec))
        kit = self.kits[cls] = Kit.build(cls, abilities) if abilities else None
        return kit

    def partyDone(self, party):
        if all(p.state == "done" for p in self.parties) and not self.ended:
            print(f"[{self.tag}] every party has done its {self.opts.clears} clear(s)",
                  file=sys.stderr, flush=True)
            if self.window0 is None:
                self.beginWindow()
            self.endWindow()

    # --- loops --------------------------------------------------------------------------

    def start(self):
        from twisted.internet.task import LoopingCall

        size = len(PARTY_ROLES)
        for i, party in enumerate(self.parties):
            self.reactor.callLater(i * size / self.opts.rate, party.nextGeneration)
        self.sender = LoopingCall(self.send)
        self.sender.clock = self.reactor
        self.sender.start(1.0 / (w1.SEND_HZ * w1.SLOTS))
        self.progress = LoopingCall(self.report)
        self.progress.clock = self.reactor
        self.progress.start(1.0, now=False)
        self.reactor.callLater(self.opts.ramp_timeout, self.rampDeadline)
        if self.opts.dump_signal:
            import signal

            signal.signal(signal.SIGUSR1, lambda *a: self.reactor.callFromThread(self.dump))

    def dump(self):
        """Each party's state and members on stderr (kill -USR1 the generator: why does a party wait?)."""
        now = self.now()
        for party in self.parties:
            mind = party.mind
            print(f"[{self.tag}] party {party.index} gen {party.generation} {party.state} "
                  f"for {now - party.since:.0f}s killed={sorted(mind.killed)} "
                  f"fighting={sorted(mind.pulledAt)} visited={sorted(mind.visited)} "
                  f"ready={mind.readyToPull()} focus={mind.focus()}", file=sys.stderr)
            for b in party.bots:
                m, f = b.member, b.fighter
                print(f"[{self.tag}]   {m.role} {b.cid} at ({m.x:.0f}, {m.z:.0f}) inside={m.inside} "
                      f"dead={b.dead} hp={f.hp if f else None}/{f.hpMax if f else None} "
                      f"res={f.res if f else None} moving={b.moving} "
                      f"target={f.target if f else None} "
                      f"npcs={sum(1 for n in f.npcs.values() if not n.dead) if f else 0}",
                      file=sys.stderr)
        sys.stderr.flush()

    def send(self):
        slot = self.slots[self.slot]
        self.slot = (self.slot + 1) % w1.SLOTS
        now = self.now()
        ct = w1.nowMillis()
        for bot in slot:
            try:
                bot.step(now, ct)
            except Exception:
                # A bug of one bot's decisions: said (once) and counted, the others go on
                # (an exception here would stop the loop, and every bot with it).
                self.stats.stepErrors += 1
                if self.stats.stepErrors == 1:
                    import traceback

                    print(f"[{self.tag}] bot {bot.cid}: step failed (said once, counted in "
                          f"step_errors)\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        self.stats.steps += len(slot)

    def report(self):
        now = self.now()
        s = self.stats
        for party in self.parties:
            party.everySecond(now)
        states = collections.Counter(p.state for p in self.parties)
        fighting = sum(1 for p in self.parties if p.fightingBoss())
        if self.phase == "measure":
            s.fighting.append(fighting)
        print(f"[{self.tag}] {self.phase} t={time.monotonic() - self.started:.0f}s "
              f"connected={s.connected} entered={s.entered} disconnects={s.disconnects} "
              f"fighting={fighting} kills={s.killsTotal} duplicates={s.duplicates} "
              + " ".join(f"{k}={v}" for k, v in sorted(states.items())),
              file=sys.stderr, flush=True)
        if self.phase == "ramp" and all(p.everInside or p.state == "done" for p in self.parties):
            self.phase = "warmup"
            self.reactor.callLater(self.opts.warmup, self.beginWindow)

    def rampDeadline(self):
        if self.phase == "ramp":
            print(f"[{self.tag}] ramp not complete after {self.opts.ramp_timeout}s; measuring anyway",
                  file=sys.stderr, flush=True)
            self.beginWindow()

    def beginWindow(self):
        if self.window0 is not None:
            return
        self.phase = "measure"
        print(f"[{self.tag}] window start", file=sys.stderr, flush=True)
        s = self.stats
        s.window()
        for party in self.parties:
            for bot in party.bots:
                if bot.fighter is not None:
                    bot.fighter.expired = 0
        self.window0 = (time.monotonic(), cpuSeconds(), s.disconnects, s.steps)
        self.reactor.callLater(self.opts.duration, self.endWindow)

    def endWindow(self):
        if self.ended:
            return
        self.ended = True
        summary = self.summary()
        print(" ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
        self.stop()

    def summary(self):
        """@return: the summary line's fields, for the window that just ended."""
        s = self.stats
        t0, cpu0, disc0, steps0 = self.window0
        window = max(time.monotonic() - t0, 1e-3)
        eff = sorted(s.effects)
        fights = sorted(s.fights)

        def q(values, p, scale=1000.0):
            return round(values[min(len(values) - 1, int(p * len(values)))] * scale, 1) if values else -1

        bots = sum(len(p.bots) for p in self.parties) or 1
        refused = sum(s.refused.values())
        out = {
            "workload": "RAID", "parties": self.opts.parties, "template": self.opts.template,
            "entered": s.entered, "window_s": round(window, 1),
            "kills": s.kills, "wipes": s.wipes, "resets": s.resets, "rewards": s.rewards,
            "items": s.items, "duplicates": s.duplicates, "clears": s.clears,
            "instances_entered": s.entries,
            "fighting_avg": round(sum(s.fighting) / len(s.fighting), 1) if s.fighting else 0,
            "fight_p50_s": q(fights, 0.5, 1.0), "fight_max_s": round(fights[-1], 1) if fights else -1,
            "casts": s.casts, "casts_s": round(s.casts / window, 2),
            "casts_ok_s": round(s.accepted / window, 2), "casts_refused_s": round(refused / window, 2),
        }
        for code, count in sorted(s.refused.items()):
            out[f"refused_{str(code).rpartition('.')[2]}_s"] = round(count / window, 2)
        out.update({
            "cast_effect_p50_ms": q(eff, 0.50), "cast_effect_p99_ms": q(eff, 0.99),
            "cast_effect_samples": len(eff),
            "cast_no_effect": sum(b.fighter.expired for p in self.parties for b in p.bots
                                  if b.fighter is not None),
            "deaths": s.deaths, "releases": s.releases, "progress": s.progress,
            "kills_total": s.killsTotal, "rewards_total": s.rewardsTotal,
            "clears_total": s.clearsTotal, "stuck": s.stuck, "given_up": s.givenUp,
            "step_errors": s.stepErrors,
            "disconnects": s.disconnects, "window_disconnects": s.disconnects - disc0,
            "failed": s.failed, "errors": sum(s.errors.values()),
        })
        for code, count in sorted(s.errors.items()):
            out[f"error_{str(code).replace('.', '_')}"] = count
        out.update({
            "bytes_per_client_s": round(s.bytesIn / bots / window, 1),
            "steps_s": round((s.steps - steps0) / window, 1),
            "gen_cpu": round((cpuSeconds() - cpu0) / window, 3),
        })
        return out

    def stop(self):
        self.stopping = True
        for loop in (self.sender, self.progress):
            if loop.running:
                loop.stop()
        for party in self.parties:
            for bot in list(party.bots):
                if bot.transport is not None:
                    bot.transport.abortConnection()
        self.reactor.callLater(0.5, self.reactor.stop)


def loadTemplate(opts):
    """
    The template's InstanceSpec from C{opts.instances_file} (read for its
    bosses and waypoints, not cross-checked with zones or game data), or
    None: the bosses are then unknown (see L{PartyMind.cleared}).
    """
    try:
        from mmoshard.world.instances.loading import loadInstances
    except ImportError:  # a tree without instance templates
        return None
    try:
        specs = loadInstances(opts.instances_file, {}, None)
    except ValueError as e:  # InstanceDataError
        print(f"[raid] instances not loaded ({e}); bosses unknown", file=sys.stderr, flush=True)
        return None
    spec = specs.get(opts.template)
    if spec is None:
        print(f"[raid] no template {opts.template!r} in {opts.instances_file}; bosses unknown",
              file=sys.stderr, flush=True)
    return spec


def parseArgs(argv):
    p = w1.argumentParser("python -m mmoshard.bots raid", __doc__)
    p.set_defaults(duration=300.0, rate=50.0, ramp_timeout=180.0)
    p.add_argument("--parties", type=int, default=1, help="parties of five")
    p.add_argument("--template", default="deadmines", help="the instance template they enter")
    p.add_argument("--clears", type=int, default=1,
                   help="instances each party clears, each with fresh characters (lockouts)")
    p.add_argument("--max-clear", type=float, default=900.0,
                   help="seconds inside before a party gives its instance up")
    p.add_argument("--abilities-file", default="etc/abilities.toml")
    p.add_argument("--classes-file", default="etc/classes.toml")
    p.add_argument("--instances-file", default="etc/instances.toml",
                   help="the templates (bosses to kill, the route through the packs)")
    p.add_argument("--dump-signal", action="store_true",
                   help="on SIGUSR1, print every party's state and members to stderr")
    opts = p.parse_args(argv)
    opts.count = opts.parties * len(PARTY_ROLES) * opts.clears
    return w1.checkArgs(p, opts)


def main(argv):
    return w1.runWith(parseArgs(argv), RaidRun)

