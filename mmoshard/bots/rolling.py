"""The rolling-restart run: bots play on a shard of real nodes while each node is restarted in turn (SIGTERM, exit, start); what they lost is counted and judged against the targets."""

import collections
import random
import time

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from mmoshard.bots.rollingbot import RollingBot
from mmoshard.bots.rollinghunt import Kits, checkGrants
from mmoshard.tokens import issueAccessToken

# docs/benchmarks.md "Rolling restart": what a run must show.
TARGETS = {
    "sessions_ended": 0,
    "pause_max_s": 2.0,
    "whispers_lost": 0,
    "whispers_twice": 0,
    "party_lost": 0,
    "party_twice": 0,
    "tickets_lost": 0,
    "granted_twice": 0,
    "linkdead_without_transfer": 0,
}
PARTY = 5


@attrs.frozen
class Options:
    """
    A run: C{bots} players in parties of five (every C{hunters}-th one
    hunts wolves), C{warmup} s of play before the first restart, C{pause}
    s between two restarts, C{settle} s after the last, C{droppers} players
    of a world node made link-dead just before it is stopped (for C{hold}
    s: they resume after the node is gone).
    """

    bots: int = 200
    hunters: int = 4
    warmup: float = 5.0
    pause: float = 2.0
    settle: float = 5.0
    droppers: int = 10
    hold: float = 3.0
    seed: int = 1


class Stats:
    """What the bots counted over the run."""

    def __init__(self):
        self.ended = collections.Counter()  # (role, reason) -> sessions ended
        self.errors = collections.Counter()  # error code -> requests refused
        self.removed = collections.Counter()  # mm.removed reason -> count
        self.gaps = []  # seconds between two world.u of one bot, the long ones (> 0.5 s)
        self.quietMax = 0.0  # the longest gap before the first restart
        self.maxGap = 0.0
        for name in ("whisperOffline", "whisperUnanswered", "whisperGivenUp", "sayUnanswered",
                     "ticketsQueued", "matches", "casts", "progress", "loot", "failures"):
            setattr(self, name, 0)


class RollingRun:
    """
    One run on a started L{mmoshard.bots.rollingcluster.RollingCluster}:
    L{run} connects the bots, lets them play, restarts every node in turn,
    lets them settle, counts, closes them and returns the figures.
    """

    log = Logger()

    def __init__(self, reactor, cluster, sqlURL, key, options=Options()):
        self.reactor = reactor
        self.cluster = cluster
        self.sqlURL = sqlURL
        self.key = key
        self.options = options
        self.stats = Stats()
        self.random = random.Random(options.seed)
        self.loops = []
        self.inflight = set()
        self.whispers = {}  # (from, n) -> to, whispers the server acknowledged
        self.said = []  # (from, n, the other members), party messages the server took
        self.bots = []
        self.rolling = False
        self.measuring = False  # from 2 s after the bots started playing to the settle's end
        self.droppedIds = set()
        self.dropped = {}  # bot -> transfers it had made when dropped
        self.restarts = []

    # -- the bots' helpers ----------------------------------------------------

    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        return deferLater(self.reactor, seconds, lambda: None)

    def later(self, delay, f, *args):
        self.reactor.callLater(delay, f, *args)

    def every(self, interval, f, delay=0.0):
        loop = LoopingCall(f)
        loop.clock = self.reactor
        self.loops.append(loop)
        self.later(delay, lambda: loop.running or loop.start(interval, now=True).addErrback(
            self.failed))

    def track(self, work):
        """Keep C{work} (a coroutine or Deferred) until it ends; a failure is a bug of the run, counted."""
        d = Deferred.fromCoroutine(work) if not isinstance(work, Deferred) else work
        self.inflight.add(d)
        d.addErrback(self.failed)
        d.addBoth(lambda _: self.inflight.discard(d))
        return d

    def failed(self, failure):
        self.stats.failures += 1
        self.stats.errors[f"exception.{failure.type.__name__}"] += 1
        self.log.failure("rolling bot work failed", failure)

    def token(self, cid):
        return issueAccessToken(self.key, cid, f"rolling-{cid}", 86400, time.time())

    def whisperTarget(self, bot):
        to = bot.cid
        while to == bot.cid:
            to = self.random.randrange(1, self.options.bots + 1)
        return to

    def whisperSent(self, sender, n, to):
        self.whispers[(sender, n)] = to

    def partySent(self, bot, n):
        self.said.append((bot.cid, n, tuple(c for c in bot.party if c != bot.cid)))

    def walking(self, cid):
        """Whether character C{cid} walks all the time (no hunter, not made link-dead)."""
        o = self.options
        return not (o.hunters and cid % o.hunters == 0) and cid not in self.droppedIds

    def worldGap(self, bot, gap):
        if bot in self.dropped or not self.measuring:
            return
        bot.maxGap = max(bot.maxGap, gap)
        stats = self.stats
        if gap > 0.5:
            stats.gaps.append(gap)
        if self.rolling:
            stats.maxGap = max(stats.maxGap, gap)
        else:
            stats.quietMax = max(stats.quietMax, gap)

    def sessionEnded(self, bot, role, reason):
        if not bot.stopped:
            self.stats.ended[(role, reason)] += 1
            self.log.warn("bot {cid}: its {role} session ended: {reason}", cid=bot.cid, role=role,
                          reason=reason)

    # -- the run --------------------------------------------------------------

    async def run(self):
        """@return: the figures (L{figures})."""
        o = self.options
        kits = Kits()
        for cid in range(1, o.bots + 1):
            first = cid - (cid - 1) % PARTY
            party = tuple(range(first, min(first + PARTY, o.bots + 1)))
            hunter = kits.hunter(cid) if o.hunters and cid % o.hunters == 0 else None
            self.bots.append(RollingBot(self, cid, party, hunter))
        for i in range(0, len(self.bots), 25):
            await gatherResults([Deferred.fromCoroutine(b.connect()) for b in self.bots[i:i + 25]],
                                consumeErrors=True)
        await gatherResults([Deferred.fromCoroutine(b.formParty())
                             for b in self.bots if b.leader], consumeErrors=True)
        await self.sleep(1.0)
        for b in self.bots:
            b.start()
        await self.sleep(min(2.0, o.warmup))
        self.measuring = True
        await self.sleep(max(0.0, o.warmup - 2.0))
        self.rolling = True
        for nodeId in self.order():
            if nodeId.startswith("world"):
                await self.dropSome(nodeId)
            self.restarts.append(await self.cluster.restart(nodeId))
            await self.sleep(o.pause)
        await self.sleep(o.settle)
        self.rolling = self.measuring = False
        return await self.finish()

    def order(self):
        """Node ids, one node of each role in turn (world, chat, matchmaking), then the others."""
        nodes = list(self.cluster.nodes)
        return sorted(nodes, key=lambda n: (n.rsplit("-", 1)[1], nodes.index(n)))

    async def dropSome(self, nodeId):
        """Make a few walkers on node C{nodeId} link-dead for C{hold} s: the drain must still move them."""
        port = self.cluster.nodes[nodeId].address.rsplit(":", 1)[1]
        on = [b for b in self.bots if b.fighter is None and b.world.session is not None
              and str(b.world.address).endswith(":" + port) and b not in self.dropped]
        chosen = on[:self.options.droppers]
        # Their watchers stop counting on them as walkers before they stand.
        self.droppedIds.update(b.cid for b in chosen)
        await self.sleep(0.5)
        for b in chosen:
            self.dropped[b] = b.world.transfers
            b.world.session.hold = self.options.hold
            b.world.session.drop()
        await self.sleep(0.3)

    async def finish(self):
        for loop in self.loops:
            if loop.running:
                loop.stop()
        for b in self.bots:
            b.stopped = True
        await self.sleep(3.0)  # replies and deliveries in flight
        await gatherResults([Deferred.fromCoroutine(b.readHistory()) for b in self.bots],
                            consumeErrors=True)
        kept = await gatherResults([Deferred.fromCoroutine(b.ticketKept()) for b in self.bots],
                                   consumeErrors=True)
        grants = await self.grants()
        figures = self.figures(kept, grants)
        await gatherResults([Deferred.fromCoroutine(b.close()) for b in self.bots],
                            consumeErrors=True)
        return figures

    async def grants(self):
        from mmoshard.store.sql import SQLStore

        sql = SQLStore(self.reactor, self.sqlURL, 1, 1)
        sql.open()
        try:
            return await checkGrants(sql)
        finally:
            await sql.close()

    def figures(self, kept, grants):
        """The run's counts: one flat dict (the summary line's key=value pairs)."""
        s = self.stats
        byId = {b.cid: b for b in self.bots}
        received = [byId[to].heard.get(key, 0) for key, to in self.whispers.items()]
        party = collections.Counter()
        for sender, n, others in self.said:
            for cid in others:
                got = byId[cid].partyHeard.get((sender, n), 0)
                party["expected"] += 1
                if got > 1:
                    party["twice"] += 1
                if got == 0:
                    party["history" if (sender, n) in byId[cid].inHistory else "lost"] += 1
        gaps = sorted(s.gaps)
        out = {
            "bots": len(self.bots),
            "hunters": sum(1 for b in self.bots if b.fighter is not None),
            "restarts": len(self.restarts),
            "restart_exit_codes": ",".join(str(r.exit_code) for r in self.restarts),
            "stop_max_s": max((r.stop_s for r in self.restarts), default=0.0),
            "sessions_ended": sum(s.ended.values()),
            "pause_max_s": round(s.maxGap, 2),
            "pause_quiet_max_s": round(s.quietMax, 2),
            "pauses_over_1s": sum(1 for g in gaps if g > 1.0),
            "whispers": len(self.whispers),
            "whispers_lost": sum(1 for n in received if n == 0),
            "whispers_twice": sum(1 for n in received if n > 1),
            "whispers_offline": s.whisperOffline,
            "whispers_unanswered": s.whisperUnanswered,
            "whispers_given_up": s.whisperGivenUp,
            "party_messages": len(self.said),
            "party_deliveries": party["expected"],
            "party_lost": party["lost"],
            "party_via_history": party["history"],
            "party_twice": party["twice"],
            "party_unanswered": s.sayUnanswered,
            "tickets_queued": s.ticketsQueued,
            "matches": s.matches,
            "tickets_lost": sum(1 for k in kept if k is False) + s.removed["gone"],
            "casts": s.casts,
            "progress_events": s.progress,
            "loot_events": s.loot,
            **grants,
            "granted_twice": grants["granted_twice"] + grants["exp_mismatch"],
            "linkdead": len(self.dropped),
            "linkdead_without_transfer": sum(1 for b, t in self.dropped.items()
                                             if b.world.transfers <= t),
            "failures": s.failures,
        }
        for (role, reason), n in sorted(s.ended.items()):
            out[f"ended_{role}_{reason}"] = n
        for code, n in sorted(s.errors.items()):
            out[f"refused_{code}"] = n
        return out


def verdict(figures):
    """@return: the targets C{figures} misses, as C{name=value (target)} strings (empty: all met)."""
    missed = []
    for name, target in TARGETS.items():
        value = figures.get(name)
        if value is None or value > target:
            missed.append(f"{name}={value} (target {'<=' if isinstance(target, float) else ''}"
                          f"{target})")
    if figures.get("failures"):
        missed.append(f"failures={figures['failures']} (bugs of the run)")
    return missed
