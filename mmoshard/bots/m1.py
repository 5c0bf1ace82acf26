"""The M1 load generator: players in solo and party tickets queue dungeon5 and arena2v2, answer ready checks (90 % of them accepted), and one summary line says how fast tickets were admitted and placed.

    python -m mmoshard.bots m1 --token-key KEY --address tcp:127.0.0.1:7000 --tickets 500

Phases (each marked on stderr with `[m1] mark <name>` for bench/m1.py):
connect (every bot: hello, mm.hello, chat.hello for party members; parties
formed through chat.party.invite), fill (`--backlog` tickets queued as fast
as the server answers, `--window` requests in flight: tickets admitted per
second, and players placed per second while the matchmaker works through
the backlog), drain (until the backlog is placed), then steady arrivals at
`--rate` tickets per second: `--warmup` seconds, then the measured window
of `--duration` seconds.  docs/benchmarks.md (M1) describes the figures.
"""

import argparse
import collections
import gc
import math
import os
import random
import resource
import sys
import time

from twisted.internet.protocol import ClientFactory
from twisted.internet.task import LoopingCall

from mmoshard.bots.m1bot import BotGroup, M1Bot
from mmoshard.bots.m1plan import Shadow, planGroups, quantile
from mmoshard.tokens import issueAccessToken

TICK = 0.01  # seconds between two looks at the arrival schedule
# Seconds between two looks at which new tickets the matcher would place:
# at least CHECK, at least CHECK_SHARE^-1 times the last look's CPU (a look
# runs the matcher over every waiting ticket), at most CHECK_MAX.
CHECK, CHECK_SHARE, CHECK_MAX = 0.05, 0.25, 1.0
DRAINED = 2.0  # seconds without a proposal after which the backlog counts as placed
RAMP_STALL = 30.0  # seconds the connect phase waits on groups that stopped forming, all players ready
# Connections per loopback source address.  Linux hands a bound socket its
# port from one half of the ephemeral range (net.ipv4.ip_local_port_range:
# 28,232 ports by default, so about 14,100) and scans the other half, a
# millisecond a connect(), once that is full: 19,500 players on one address
# froze the generator for 26 s of its connect storm (2026-12-03).  A quarter
# of that half leaves room for reconnections and for the previous run's
# sockets still in TIME_WAIT (60 s).
PER_SOURCE = 3500


class Stats:
    """Counters over the whole run; the window's figures are differences of two snapshots."""

    COUNTERS = ("connected", "ready", "failed", "disconnects", "broken", "queueSent", "admitted",
                "placedPlayers", "proposals", "matchedPlayers", "matches", "requeued",
                "declinesSent", "starved", "duplicates", "retold", "reconnects", "lost",
                "missedMatched", "loginRetries", "dropped")

    def __init__(self):
        for name in self.COUNTERS:
            setattr(self, name, 0)
        self.errors = collections.Counter()
        self.refused = collections.Counter()
        self.removed = collections.Counter()
        self.vanished = collections.Counter()  # by the state the bots thought it in
        self.waits = []  # seconds, ticket to first proposal, tickets queued in the window
        self.matchableWaits = []  # the same, tickets that could be matched when admitted
        self.queueReplies = []  # seconds, mm.queue sent to answered

    def snapshot(self):
        return {name: getattr(self, name) for name in self.COUNTERS}


class BotFactory(ClientFactory):
    def __init__(self, run, group, member, address, again):
        self.run = run
        self.group = group
        self.member = member
        self.address = address
        self.again = again

    def buildProtocol(self, addr):
        return M1Bot(self.run, self.group, self.member, self.address, self.again)

    def clientConnectionFailed(self, connector, reason):
        self.run.stats.failed += 1
        if self.run.opts.reconnect and not self.run.stopping:
            # Its node is dead (--crash): on to the next.
            self.run.reconnectTo(self.group, self.member, self.address, self.again)


class GroupRun:
    """One M1 run: the groups of the plan, their bots, the arrival schedule, the phases and the summary."""

    tag = "m1"

    def __init__(self, reactor, opts, classRoles, plan=None):
        """@param plan: the groups (L{mmoshard.bots.m1plan.Group}s; None: L{planGroups} from C{opts})."""
        self.reactor = reactor
        self.opts = opts
        self.addresses = []
        for address in opts.address.split(","):
            host, _, port = address.replace("tcp:", "").rpartition(":")
            self.addresses.append((host, int(port)))
        self.stats = Stats()
        # Jitter of the bots' back-off (seeded: a run repeats).
        self.random = random.Random(opts.seed)
        self.plan = plan if plan is not None else planGroups(
            opts.tickets, classRoles, opts.seed, opts.arena_share, opts.first_id)
        self.groups = [BotGroup(self, g) for g in self.plan]
        self.players = sum(g.size for g in self.plan)
        self.sources = max(1, math.ceil(self.players / PER_SOURCE))
        self.specs = loadSpecs(opts.queues_file)
        self.shadows = {}
        self.idle = collections.deque()
        self.phase = "connect"
        self.measuring = False
        self.stopping = False
        self.started = self.now()
        self.marks = {}
        self.window0 = None
        self.arrived = 0
        self.steadyAt = None
        self.fillLeft = 0
        self.inFlight = 0
        self.lostTickets = []
        self.lastProposal = 0.0
        self.rampSeen = None  # (formed, broken, since when) in the connect phase
        self.checkCPU = 0.0  # seconds the matchability looks took

    def now(self):
        return time.monotonic()

    def token(self, cid):
        return issueAccessToken(self.opts.token_key, cid, f"bot-{cid}", 86400, time.time())

    def mark(self, name):
        """Start phase C{name}, noted on stderr (bench/m1.py takes its measures at these)."""
        self.phase = name
        self.marks[name] = self.now()
        print(f"[{self.tag}] mark {name} t={self.marks[name] - self.started:.1f}s",
              file=sys.stderr, flush=True)

    # -- connecting ---------------------------------------------------------------------

    def start(self):
        interval = 1.0 / self.opts.connect_rate
        at = 0.0
        for group in self.groups:
            for member in group.group.members:
                self.reactor.callLater(at, self.connect, group, member)
                at += interval
        self.arrivals = LoopingCall(self.arrive)
        self.arrivals.clock = self.reactor
        self.progress = LoopingCall(self.report)
        self.progress.clock = self.reactor
        self.progress.start(1.0, now=False)
        self.reactor.callLater(self.opts.ramp_timeout, self.rampDeadline)

    def connect(self, group, member, address=None, again=False):
        cid = member.character_id
        if address is None:
            address = cid % len(self.addresses)
        host, port = self.addresses[address]
        source = f"127.0.0.{1 + cid % self.sources}" if host == "127.0.0.1" else ""
        self.reactor.connectTCP(host, port, BotFactory(self, group, member, address, again), 30,
                                bindAddress=(source, 0) if source else None)

    def reconnect(self, bot):
        """C{bot}'s connection dropped (its node died): connect again, to the next address."""
        self.reconnectTo(bot.group, bot.member, bot.address, True)

    def reconnectTo(self, group, member, address, again):
        """Connect C{member} again, to the address after C{address}, after --reconnect-delay."""
        self.stats.reconnects += 1
        self.reactor.callLater(self.opts.reconnect_delay, self.connect, group, member,
                               (address + 1) % len(self.addresses), again)

    def retryLogin(self, bot):
        """
        C{bot}'s connection dropped before its welcome: connect again, to the
        same node, after 1–2 s; a reconnection stays one (its party and
        ticket carry on).
        """
        self.stats.loginRetries += 1
        self.reactor.callLater(1.0 + self.random.random(), self.connect, bot.group, bot.member,
                               bot.address, bot.again)

    def clock(self):
        return time.time()

    def shadow(self, queue):
        """@return: the run's copy of C{queue}'s waiting tickets (None without the matcher)."""
        shadow = self.shadows.get(queue)
        if shadow is None and self.specs is not None and queue in self.specs:
            from mmoshard.matchmaking.matcher import formMatches

            shadow = self.shadows[queue] = Shadow(self.specs[queue], formMatches)
        return shadow

    def checkMatchable(self):
        """Mark the tickets admitted since the last look that the matcher would place at once; look again later while measuring."""
        began = time.process_time()
        now = self.clock()
        at = self.now()
        for shadow in self.shadows.values():
            for group in shadow.check(now):
                group.matchableAt = at
        took = time.process_time() - began
        self.checkCPU += took
        if self.measuring and not self.stopping:
            self.reactor.callLater(min(CHECK_MAX, max(CHECK, took / CHECK_SHARE)),
                                   self.checkMatchable)

    def becameIdle(self, group):
        self.idle.append(group)
        if self.phase == "fill":
            self.fillMore()

    def formed(self):
        """@return: (groups idle or beyond, groups given up)."""
        broken = sum(1 for g in self.groups if g.state == "broken")
        busy = sum(1 for g in self.groups if g.state in ("connecting", "forming", "settling"))
        return len(self.groups) - busy - broken, broken

    def rampStalled(self, formed, broken):
        """
        @return: whether every player is ready and no group formed or broke
            for L{RAMP_STALL} s (a party whose invite went unanswered in the
            connect storm: the run need not wait out C{--ramp-timeout}).
        """
        now = self.now()
        if self.rampSeen is None or self.rampSeen[:2] != (formed, broken) \
                or self.stats.ready < self.players:
            self.rampSeen = (formed, broken, now)
            return False
        return now - self.rampSeen[2] >= RAMP_STALL

    def rampDeadline(self):
        if self.phase == "connect":
            print(f"[{self.tag}] not every group formed after {self.opts.ramp_timeout}s; going on",
                  file=sys.stderr, flush=True)
            self.startFill()

    # -- the backlog -------------------------------------------------------------------------

    def startFill(self):
        # Groups broken in the connect phase (counted in "broken") do not queue.
        self.fillLeft = self.fillSent = min(self.opts.backlog, len(self.idle))
        if self.fillLeft <= 0:
            self.startSteady()
            return
        self.fillPlaced0 = self.stats.placedPlayers
        self.fillMatches0 = self.stats.proposals
        self.fillAdmitted0 = self.stats.admitted
        self.mark("fill")
        self.fillMore()

    def fillMore(self):
        while self.fillLeft > 0 and self.inFlight < self.opts.window and self.sendIdle():
            self.fillLeft -= 1
        if self.fillLeft > 0 and not self.idle and self.inFlight == 0:
            # Groups dropped before their turn: the fill is over with fewer.
            self.fillSent -= self.fillLeft
            self.fillLeft = 0
            self.fillEnded()

    def sendIdle(self):
        """Queue the group idle longest that is still in the run. @return: whether there was one."""
        while self.idle:
            if self.send(self.idle.popleft()):
                return True
        return False

    def send(self, group):
        """Queue C{group} (@return: True), unless it left the run since it became idle."""
        if group.state != "idle":
            return False
        self.inFlight += 1
        group.queue(self.now())
        return True

    def ticketAdmitted(self, group, took, inFlight=True):
        """C{group}'s ticket was admitted after C{took} s; C{inFlight}: its mm.queue still counted in flight."""
        self.stats.admitted += 1
        self.stats.queueReplies.append(took)
        if inFlight:
            self.queueAnswered()

    def queueAnswered(self):
        """An mm.queue was answered (admitted or refused): in the fill, the next goes; after the last, the drain."""
        self.inFlight -= 1
        if self.phase == "fill":
            self.fillMore()
            if self.fillLeft == 0 and self.inFlight == 0:
                self.fillEnded()

    def fillEnded(self):
        if self.phase == "fill":
            self.fillEnd = self.now()
            self.fillAdmitted = self.stats.admitted - self.fillAdmitted0
            self.mark("drain")

    def waitingTickets(self):
        return sum(1 for g in self.groups if g.state in ("queuing", "waiting"))

    # -- steady arrivals -------------------------------------------------------------------------

    def startSteady(self):
        self.mark("steady")
        self.steadyAt = self.now()
        self.arrived = 0
        self.arrivals.start(TICK)
        self.reactor.callLater(self.opts.warmup, self.beginWindow)

    def arrive(self):
        due = int((self.now() - self.steadyAt) * self.opts.rate) - self.arrived
        for _ in range(max(0, due)):
            self.arrived += 1
            if not self.sendIdle():
                self.stats.starved += 1

    def beginWindow(self):
        gc.collect()
        self.measuring = True
        s = self.stats
        s.waits, s.matchableWaits, s.queueReplies = [], [], []
        self.window0 = (self.now(), self.cpu(), s.snapshot(), collections.Counter(s.removed))
        if self.specs is not None:
            self.reactor.callLater(CHECK, self.checkMatchable)
        self.mark("window")
        print(f"[{self.tag}] window start", file=sys.stderr, flush=True)
        self.reactor.callLater(self.opts.duration, self.endWindow)

    # -- what the bots tell ----------------------------------------------------------------------

    def proposalSeen(self, bot, match, first, rosterSize):
        s = self.stats
        s.placedPlayers += 1
        self.lastProposal = self.now()
        if first:
            s.proposals += 1

    def firstProposal(self, group, now):
        if group.inWindow:
            waited = now - group.sentAt
            self.stats.waits.append(waited)
            if group.matchableAt is not None:
                self.stats.matchableWaits.append(waited)

    # -- progress and the end ------------------------------------------------------------------

    def cpu(self):
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def report(self):
        s = self.stats
        formed, broken = self.formed()
        waiting = self.waitingTickets()
        print(f"[{self.tag}] {self.phase} t={self.now() - self.started:.0f}s connected={s.connected} "
              f"ready={s.ready}/{self.players} groups={formed}/{len(self.groups)} broken={broken} "
              f"admitted={s.admitted} waiting={waiting} proposals={s.proposals} "
              f"matches={s.matches} starved={s.starved} disconnects={s.disconnects} "
              f"errors={sum(s.errors.values())}", file=sys.stderr, flush=True)
        if self.phase == "connect" and formed + broken >= len(self.groups) \
                and all(g.state != "settling" for g in self.groups):
            self.startFill()
        elif self.phase == "connect" and self.rampStalled(formed, broken):
            left = len(self.groups) - formed - broken
            print(f"[{self.tag}] every player ready, but {left} group(s) still forming after "
                  f"{RAMP_STALL:.0f} s without change; going on without them",
                  file=sys.stderr, flush=True)
            self.startFill()
        elif self.phase == "drain":
            quiet = self.now() - max(self.lastProposal, self.fillEnd)
            if waiting <= max(10, self.opts.rate * 0.5) or quiet > DRAINED \
                    or self.now() - self.fillEnd > self.opts.drain_timeout:
                # The backlog is placed (or what is left cannot be matched).
                end = max(self.lastProposal, self.fillEnd)
                self.burst = (end - self.marks["fill"], s.placedPlayers - self.fillPlaced0,
                              s.proposals - self.fillMatches0)
                self.startSteady()

    def endWindow(self):
        """Arrivals stop; the bots ask mm.status of every ticket they hold waiting (the audit), then the summary."""
        self.measuring = False
        s = self.stats
        self.window1 = (self.now(), self.cpu(), s.snapshot(), collections.Counter(s.removed))
        if self.arrivals.running:
            self.arrivals.stop()
        self.reactor.callLater(self.opts.audit_after, self.audit)

    def audit(self):
        print(f"[{self.tag}] auditing the waiting tickets", file=sys.stderr, flush=True)
        for group in self.groups:
            if group.state == "waiting" and group.leader is not None:
                group.leader.request("mm.status", {})
        self.reactor.callLater(self.opts.audit_after, self.finish)

    def finish(self):
        now = self.now()
        # Tickets of the window still waiting count at their age (a lower bound).
        unplaced = [now - g.sentAt for g in self.groups
                    if g.inWindow and not g.proposedOnce and g.state in ("queuing", "waiting")]
        summary = self.summary(unplaced)
        print(" ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
        self.stop()

    def fillSummary(self):
        """The fill's fields (none before it ended): the tickets it sent, those refused, admitted/s."""
        if not hasattr(self, "fillEnd"):
            return {}
        fill = self.fillEnd - self.marks["fill"]
        sent = self.fillSent
        # Only the tickets admitted count: one refused (server.busy past
        # [session] max_pending) was answered, not admitted.
        return {
            "fill_tickets": sent,
            "fill_refused": sent - self.fillAdmitted,
            "fill_s": round(fill, 2),
            "admitted_per_s": round(self.fillAdmitted / max(fill, 1e-9)),
        }

    def summary(self, unplaced):
        """The summary line's fields: the window's rates, the waits of its tickets (to their first proposal, whenever it came), the audit."""
        s = self.stats
        t0, cpu0, before, removed0 = self.window0
        t1, cpu1, after, removed1 = self.window1
        window = t1 - t0
        d = {k: v - before[k] for k, v in after.items()}
        waits = s.waits + unplaced
        ms = 1000.0
        out = {"workload": "M1", "tickets": len(self.groups), "players": self.players,
               "ready": s.ready, "broken": s.broken}
        out.update(self.fillSummary())
        if hasattr(self, "burst"):
            seconds, placed, proposals = self.burst
            out.update({"burst_s": round(seconds, 2),
                        "burst_placed_per_s": round(placed / max(seconds, 1e-9)),
                        "burst_matches_per_s": round(proposals / max(seconds, 1e-9), 1)})
        out.update({
            "window_s": round(window, 1), "rate": self.opts.rate,
            "window_admitted_per_s": round(d["admitted"] / window, 1),
            "placed_per_s": round(d["placedPlayers"] / window, 1),
            "matches_per_s": round(d["proposals"] / window, 1),
            "completed_per_s": round(d["matches"] / window, 1),
            "wait_p50_ms": round(quantile(waits, 0.5) * ms, 1),
            "wait_p99_ms": round(quantile(waits, 0.99) * ms, 1),
            "matchable_p50_ms": round(quantile(s.matchableWaits, 0.5) * ms, 1),
            "matchable_p99_ms": round(quantile(s.matchableWaits, 0.99) * ms, 1),
            "matchable_share": round(len(s.matchableWaits) / max(1, len(s.waits)), 3),
            "wait_samples": len(waits), "unplaced": len(unplaced),
            "unplaced_max_s": round(max(unplaced, default=0.0), 2),
            "queue_reply_p99_ms": round(quantile(s.queueReplies, 0.99) * ms, 1),
            "requeued": d["requeued"], "declines_sent": d["declinesSent"],
            "removed": sum(removed1.values()) - sum(removed0.values()),
            "removed_reasons": ",".join(f"{k}:{v}" for k, v in sorted((removed1 - removed0).items()))
            or "none",
            "starved": d["starved"], "duplicates": s.duplicates, "retold": s.retold, "lost": s.lost,
            "vanished": ",".join(f"{k}:{v}" for k, v in sorted(s.vanished.items())) or "none",
            "missed_matched": s.missedMatched, "reconnects": s.reconnects,
            "disconnects": s.disconnects, "dropped": s.dropped, "login_retries": s.loginRetries,
            "failed": s.failed,
            "errors": sum(s.errors.values()),
            "error_codes": ",".join(f"{k}:{v}" for k, v in sorted(s.errors.items())) or "none",
            "gen_cpu": round((cpu1 - cpu0) / window, 3),
            "check_cpu": round(self.checkCPU / window, 3),
        })
        return out

    def stop(self):
        self.stopping = True
        for loop in (self.arrivals, self.progress):
            if loop.running:
                loop.stop()
        for group in self.groups:
            for bot in group.bots.values():
                if bot.transport is not None:
                    bot.transport.abortConnection()
        self.reactor.callLater(0.5, self.reactor.stop)


def loadSpecs(path):
    """@return: the queues of C{path} (QueueSpecs by name), or None when they cannot be read here."""
    try:
        from mmoshard.matchmaking.loading import loadQueues

        return loadQueues(path)
    except Exception as e:
        print(f"[m1] no matchability check: the queues are not readable here ({e})",
              file=sys.stderr, flush=True)
        return None


def parseArgs(argv):
    p = argparse.ArgumentParser(prog="python -m mmoshard.bots m1", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default="tcp:127.0.0.1:7000",
                   help="session TCP listener(s), comma-separated: character c uses the c mod n-th")
    p.add_argument("--token-key", default=os.environ.get("MMOSHARD_TOKEN_KEY"),
                   help="the nodes' token key, to mint the bots' access tokens")
    p.add_argument("--tickets", type=int, default=500,
                   help="groups (one ticket each): solo players and parties of 2-5")
    p.add_argument("--first-id", type=int, default=1,
                   help="characters (and their accounts) are numbered from this id")
    p.add_argument("--arena-share", type=float, default=0.25, help="share of groups for arena2v2")
    p.add_argument("--classes-file", default="etc/classes.toml")
    p.add_argument("--queues-file", default="etc/queues.toml",
                   help="the server's queues, for the matcher the generator runs on its copy")
    p.add_argument("--backlog", type=int, default=None,
                   help="tickets queued at once before the steady arrivals (default: every group)")
    p.add_argument("--window", type=int, default=1000,
                   help="mm.queue requests in flight in the fill (a node's [session] max_pending)")
    p.add_argument("--rate", type=float, default=100.0, help="steady arrivals, tickets per second")
    p.add_argument("--decline", type=float, default=0.1, help="share of ready checks declined")
    p.add_argument("--think", type=float, default=1.0,
                   help="seconds a group rests after its match (or removal) before it may queue again")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds a formed party waits before it queues (its change reaches the matchmakers)")
    p.add_argument("--connect-rate", type=float, default=500.0, help="connections per second")
    p.add_argument("--ramp-timeout", type=float, default=300.0)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--duration", type=float, default=30.0, help="measured window, seconds")
    p.add_argument("--reconnect", action="store_true",
                   help="a bot whose connection drops connects again to the next address")
    p.add_argument("--reconnect-delay", type=float, default=0.5)
    p.add_argument("--audit-after", type=float, default=2.0,
                   help="seconds after the window before the mm.status audit, and for its answers")
    p.add_argument("--seed", type=int, default=1)
    opts = p.parse_args(argv)
    if not opts.token_key:
        p.error("--token-key (or MMOSHARD_TOKEN_KEY) is required")
    if opts.backlog is None:
        opts.backlog = opts.tickets
    return opts


def main(argv):
    from twisted.internet import epollreactor
    from twisted.internet.error import ReactorAlreadyInstalledError

    from mmoshard.bots.w2 import classRoles

    opts = parseArgs(argv)
    try:
        epollreactor.install()
    except ReactorAlreadyInstalledError:
        pass
    from twisted.internet import reactor

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run = GroupRun(reactor, opts, classRoles(opts.classes_file))
    gc.freeze()
    reactor.callWhenRunning(run.start)
    limit = (opts.ramp_timeout + opts.drain_timeout + opts.warmup + opts.duration
             + 2 * opts.audit_after + 120)
    reactor.callLater(limit, lambda: (print(f"[{run.tag}] time limit reached", file=sys.stderr),
                                      run.stop()))
    reactor.run()
    return 0
