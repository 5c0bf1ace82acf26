"""Tests for the M1 bots: the plan, who declines, the matchability copy, and a group's wiring from connection to match, requeue, removal and audit."""

import argparse
import collections

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from mmoshard.bots import m1, m1plan
from mmoshard.bots.m1plan import Group, Member
from mmoshard.bots.w2 import classRoles
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame

ROLES = classRoles("etc/classes.toml")
TEAM = collections.Counter({"tank": 1, "healer": 1, "damage": 3})


class Transport(StringTransport):
    def setTcpNoDelay(self, enabled):
        pass


class PlanTests(TestCase):
    def test_groups_fit_their_queue(self):
        """Every dungeon group is a solo player or a party of 2-5 whose roles fit one team's quotas; arena groups are one or two players."""
        groups = m1plan.planGroups(2000, ROLES, seed=3)
        sizes = collections.Counter()
        for g in groups:
            roles = collections.Counter(m.role for m in g.members)
            if g.queue == m1plan.DUNGEON:
                self.assertFalse(roles - TEAM, g)
            else:
                self.assertIn(g.size, (1, 2))
            sizes[(g.queue, g.size)] += 1
        self.assertEqual({s for _, s in sizes}, {1, 2, 3, 4, 5})
        arena = sum(n for (q, _), n in sizes.items() if q == m1plan.ARENA)
        self.assertTrue(400 < arena < 600, arena)

    def test_roles_come_in_the_quotas_proportions(self):
        """Over the dungeon groups tanks and healers are each about a fifth of the players, damage three fifths."""
        groups = m1plan.planGroups(4000, ROLES, seed=5, arenaShare=0.0)
        roles = collections.Counter(m.role for g in groups for m in g.members)
        total = sum(roles.values())
        for role, share in (("tank", 0.2), ("healer", 0.2), ("damage", 0.6)):
            self.assertLess(abs(roles[role] / total - share), 0.02, role)

    def test_deterministic_numbering(self):
        """The same seed gives the same plan; characters are numbered from first_id in order, each with its class."""
        one = m1plan.planGroups(50, ROLES, seed=7, firstId=100)
        self.assertEqual(one, m1plan.planGroups(50, ROLES, seed=7, firstId=100))
        plan = m1plan.characterPlan(one)
        self.assertEqual([c for c, _ in plan], list(range(100, 100 + len(plan))))
        self.assertTrue(all(ROLES[cls] for _, cls in plan))

    def test_declines_share_and_agreement(self):
        """About the asked share of matches is declined, and every bot agrees on which."""
        ids = [f"dungeon5/{i:x}" for i in range(20000)]
        declined = [m for m in ids if m1plan.declines(m, 1, 0.1)]
        self.assertLess(abs(len(declined) / len(ids) - 0.1), 0.01)
        self.assertEqual(declined, [m for m in ids if m1plan.declines(m, 1, 0.1)])
        self.assertFalse(any(m1plan.declines(m, 1, 0.0) for m in ids))


def solo(index, cid, cls, queue=m1plan.DUNGEON):
    return Group(index, queue, (Member(cid, cls, ROLES[cls]),))


class ShadowTests(TestCase):
    def shadow(self):
        from mmoshard.matchmaking.loading import loadQueues
        from mmoshard.matchmaking.matcher import formMatches

        return m1plan.Shadow(loadQueues("etc/queues.toml")["dungeon5"], formMatches)

    def test_the_ticket_completing_a_team_is_matchable(self):
        """With the real matcher: four waiting players of a team make the fifth matchable, not the four alone; a younger tank behind an older one is not."""
        shadow = self.shadow()
        classes = ("warrior", "priest", "mage", "rogue", "ranger")
        groups = [solo(i, i + 1, cls) for i, cls in enumerate(classes)]
        for g in groups[:4]:
            shadow.add(g, g.members, f"t{g.index}", 1000.0 + g.index, fresh=True)
        self.assertEqual(shadow.check(1010.0), [])
        shadow.add(groups[4], groups[4].members, "t4", 1004.0, fresh=True)
        late = solo(9, 10, "paladin")
        shadow.add(late, late.members, "t9", 1005.0, fresh=True)
        self.assertEqual(shadow.check(1010.0), [groups[4]])

    def test_removed_before_a_look(self):
        """A ticket proposed before the first look says so, and is looked at no more."""
        shadow = self.shadow()
        g = solo(0, 1, "mage")
        shadow.add(g, g.members, "t0", 1000.0, fresh=True)
        self.assertTrue(shadow.remove("t0"))
        self.assertFalse(shadow.remove("t0"))
        self.assertEqual(shadow.check(1001.0), [])


class WiringTests(TestCase):
    def setUp(self):
        opts = m1.parseArgs(["--token-key", "k" * 40, "--tickets", "2", "--backlog", "2",
                             "--think", "1.0", "--settle", "0.5", "--decline", "1.0",
                             "--queues-file", "etc/queues.toml"])
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1000.0)
        self.plan = [solo(0, 1, "warrior"),
                     Group(1, m1plan.DUNGEON, (Member(2, "priest", "healer"),
                                               Member(3, "mage", "damage")))]
        self.run = m1.GroupRun(self.reactor, opts, ROLES, plan=self.plan)
        self.run.now = self.reactor.seconds
        self.run.clock = self.reactor.seconds
        self.run.started = self.reactor.seconds()
        self.transports = {}
        self.bots = {}

    def feed(self, cid, message):
        self.bots[cid].dataReceived(frame(encode(message)))

    def rid(self, cid, t):
        """The id of bot C{cid}'s latest request of type C{t} not yet answered."""
        return max(i for i, (sent, _) in self.bots[cid].sent.items() if sent == t)

    def sent(self, cid):
        t = self.transports[cid]
        out = [decode(p) for p in FrameDecoder(1 << 20).feed(t.value())]
        t.clear()
        return out

    def connect(self):
        """Every bot connects, says hello and mm.hello; the party's say chat.hello and form the party."""
        self.startAndConnect()
        for bot in list(self.bots.values()):
            (hello,) = self.sent(bot.cid)
            self.assertEqual((hello["t"], hello["id"]), ("hello", self.rid(bot.cid, "hello")))
            self.feed(bot.cid, {"t": "welcome", "id": 1, "session_id": "s", "resume_token": "r"})
            self.assertEqual(self.sent(bot.cid), [{"t": "mm.hello", "id": self.rid(bot.cid, "mm.hello"),
                                                   "character_id": bot.cid}])
            self.feed(bot.cid, {"t": "mm.hello", "id": self.rid(bot.cid, "mm.hello"), "character_id": bot.cid,
                                "name": f"Bot{bot.cid}", "ticket": None, "proposal": None})
        self.assertEqual(self.sent(1), [])
        self.formParty()
        self.assertEqual([g.state for g in self.run.groups], ["idle", "idle"])

    def formParty(self):
        """Bots 2 and 3, their mm.hello answered, say chat.hello and form their party; it settles."""
        for cid in (2, 3):
            (chat,) = self.sent(cid)
            self.assertEqual(chat["t"], "chat.hello")
            self.feed(cid, {"t": "chat.hello", "id": self.rid(cid, "chat.hello"), "party": None})
        self.assertEqual([m["t"] for m in self.sent(2)], ["chat.party.create"])
        self.feed(2, {"t": "chat.party.create", "id": self.rid(2, "chat.party.create"),
                      "party": {"id": "p1"}})
        self.assertEqual([(m["t"], m["name"]) for m in self.sent(2)],
                         [("chat.party.invite", "Bot3")])
        self.feed(3, {"t": "chat.party.invited", "party_id": "p1", "from": 2})
        self.assertEqual(self.sent(3), [{"t": "chat.party.accept", "id": self.rid(3, "chat.party.accept"),
                                         "party_id": "p1"}])
        self.feed(2, {"t": "chat.party.update", "party_id": "p1", "event": "joined",
                      "party": {"id": "p1", "members": [[2, "Bot2"], [3, "Bot3"]]}})
        self.assertEqual(self.run.groups[1].state, "settling")
        self.reactor.advance(0.5)
        self.assertEqual(self.run.groups[1].state, "idle")

    def queueBoth(self):
        """The fill: both leaders queue dungeon5 and are admitted."""
        self.connect()
        self.run.report()
        self.assertEqual(self.run.phase, "fill")
        for cid, ticket in ((1, "t1"), (2, "t2")):
            (q,) = self.sent(cid)
            self.assertEqual((q["t"], q["queue"]), ("mm.queue", "dungeon5"))
            self.feed(cid, {"t": "mm.queue", "id": self.rid(cid, "mm.queue"), "ticket": ticket,
                            "queue": "dungeon5", "eta_s": None})
        self.assertEqual(self.run.phase, "drain")
        self.assertEqual([g.state for g in self.run.groups], ["waiting", "waiting"])
        self.assertEqual(self.run.stats.admitted, 2)

    def propose(self, match, roster=(1, 2, 3)):
        body = {"t": "mm.proposal", "match": match, "queue": "dungeon5", "team": 0,
                "roles": [{"character_id": c, "role": "x", "team": 0} for c in roster],
                "expires_in": 20.0}
        for cid in roster:
            self.feed(cid, dict(body, role="x"))
        return {cid: self.sent(cid) for cid in roster}

    def test_decline_by_the_roster_first_then_matched(self):
        """A declined match is declined by the roster's first member only (the others accept); its group rests, then is matched next time, once; a member without its mm.matched is counted, one told its match twice (or an earlier ticket's match after queueing again) is not a duplicate, one given a second match is."""
        self.queueBoth()
        answers = self.propose("dungeon5/a")
        self.assertEqual([(m["t"], m["match"]) for m in answers[1]], [("mm.decline", "dungeon5/a")])
        self.assertEqual([m["t"] for m in answers[2] + answers[3]], ["mm.accept", "mm.accept"])
        self.feed(1, {"t": "mm.decline", "id": self.rid(1, "mm.decline"), "match": "dungeon5/a",
                      "ticket": "t1"})
        for cid in (2, 3):
            self.feed(cid, {"t": "mm.requeued", "reason": "declined", "ticket": "t2",
                            "match": "dungeon5/a"})
        self.assertEqual([g.state for g in self.run.groups], ["thinking", "waiting"])
        self.assertEqual(self.run.stats.removed, {"declined": 1})
        self.assertEqual((self.run.stats.placedPlayers, self.run.stats.proposals), (3, 1))
        self.reactor.advance(1.0)
        self.assertEqual(self.run.groups[0].state, "idle")
        # The party is proposed again (with someone else first): accepted, matched.
        answers = self.propose("dungeon5/b", roster=(2, 3))
        self.assertEqual([m["t"] for m in answers[2] + answers[3]], ["mm.decline", "mm.accept"])
        self.run.opts.decline = 0.0
        answers = self.propose("dungeon5/c", roster=(2, 3))
        self.assertEqual([m["t"] for m in answers[2] + answers[3]], ["mm.accept", "mm.accept"])
        # Only the member's mm.matched arrives (the leader's went to a dead node).
        self.feed(3, {"t": "mm.matched", "match": "dungeon5/c", "ticket": "adm-3"})
        self.assertEqual(self.run.groups[1].state, "thinking")
        self.assertEqual((self.run.stats.matches, self.run.stats.matchedPlayers,
                          self.run.stats.duplicates), (0, 1, 0))
        self.reactor.advance(1.0)
        self.assertEqual((self.run.groups[1].state, self.run.stats.missedMatched), ("idle", 1))
        # The same match told again (a new lease holder, a reconnection's
        # mm.hello): placed once.
        self.feed(3, {"t": "mm.matched", "match": "dungeon5/c", "ticket": "adm-3"})
        self.assertEqual((self.run.stats.duplicates, self.run.stats.retold), (0, 1))
        # Another match for the same ticket: a character placed twice.
        self.feed(3, {"t": "mm.matched", "match": "dungeon5/d", "ticket": "adm-3"})
        self.assertEqual((self.run.stats.duplicates, self.run.stats.retold), (1, 1))
        # Queued again, then the old match told again: not this ticket's.
        self.run.groups[1].queue(self.reactor.seconds())
        self.feed(3, {"t": "mm.matched", "match": "dungeon5/c", "ticket": "adm-3"})
        self.assertEqual((self.run.stats.duplicates, self.run.stats.retold), (1, 2))

    def test_window_summary_and_audit(self):
        """The steady window counts arrivals, waits to the first proposal and the tickets still waiting; the audit counts a waiting ticket the server lost."""
        self.queueBoth()
        self.run.opts.decline = 0.0
        self.run.opts.think = 15.0  # at rest until the window
        self.propose("dungeon5/a")
        for cid in (1, 2, 3):
            self.feed(cid, {"t": "mm.matched", "match": "dungeon5/a", "ticket": "adm"})
        self.assertEqual(self.run.stats.matches, 1)  # counted by the roster's first
        self.reactor.advance(2.5)
        self.run.report()  # no proposal for DRAINED seconds: the backlog is placed
        self.assertEqual(self.run.phase, "steady")
        self.reactor.advance(self.run.opts.warmup)
        self.assertEqual(self.run.phase, "window")
        self.assertEqual([g.state for g in self.run.groups], ["thinking", "thinking"])
        self.reactor.advance(3.0)  # at rest no more: both queue at the next arrival due
        self.reactor.advance(m1.TICK * 5)
        for cid, ticket in ((1, "t3"), (2, "t4")):
            (q,) = self.sent(cid)
            self.assertEqual(q["t"], "mm.queue")
            self.feed(cid, {"t": "mm.queue", "id": self.rid(cid, "mm.queue"), "ticket": ticket})
        self.assertGreater(self.run.stats.starved, 0)
        self.reactor.advance(0.25)
        self.propose("dungeon5/b", roster=(2, 3))
        self.reactor.advance(self.run.opts.duration)
        self.reactor.advance(self.run.opts.audit_after)
        self.assertEqual([m["t"] for m in self.sent(1)], ["mm.status"])
        self.assertEqual(self.sent(2), [])  # in a proposal: not audited
        self.feed(1, {"t": "mm.status", "id": self.rid(1, "mm.status"), "ticket": None, "proposal": None})
        self.assertEqual(self.run.lostTickets, ["t3"])
        summary = self.run.summary([30.0])
        self.assertEqual((summary["lost"], summary["unplaced"], summary["wait_samples"],
                          summary["missed_matched"]), (1, 1, 2, 0))
        (waited,) = self.run.stats.waits
        self.assertAlmostEqual(waited, 0.25)
        self.assertEqual(summary["wait_p99_ms"], 30000.0)  # the ticket still waiting counts
        self.assertEqual(summary["placed_per_s"], round(2 / self.run.opts.duration, 1))
        self.assertEqual(summary["window_admitted_per_s"], round(2 / self.run.opts.duration, 1))

    def test_reconnection_resyncs(self):
        """A bot whose node died connects to the next address and says mm.hello again; a waiting ticket the answer does not know counts as vanished."""
        self.run.opts.reconnect = True
        self.run.addresses.append(("127.0.0.1", 7001))
        self.queueBoth()
        clients = len(self.reactor.tcpClients)
        before = self.run.addresses[self.bots[1].address][1]
        self.bots[1].connectionLost(None)
        self.assertEqual(self.run.stats.disconnects, 1)
        self.reactor.advance(self.run.opts.reconnect_delay)
        host, port, factory, *_ = self.reactor.tcpClients[clients]
        self.assertEqual({port, before}, {7000, 7001})
        bot = factory.buildProtocol(None)
        self.bots[1] = bot
        self.transports[1] = Transport()
        bot.makeConnection(self.transports[1])
        self.feed(1, {"t": "welcome", "id": 1})
        self.feed(1, {"t": "mm.hello", "id": self.rid(1, "mm.hello"), "name": "Bot1", "ticket": None,
                      "proposal": None})
        self.assertEqual(self.run.stats.vanished, {"waiting": 1})
        self.assertEqual(self.run.groups[0].state, "thinking")
        self.assertIs(self.run.groups[0].leader, bot)

    def test_matchedWhileWaitingEndsTheTicket(self):
        """A group that took itself for requeued (a reconnection's mm.hello answered no proposal) and then gets mm.matched for that match is placed: its ticket ends, not left waiting to be counted lost."""
        self.run.opts.reconnect = True
        self.run.opts.decline = 0.0
        self.queueBoth()
        self.propose("dungeon5/a", roster=(2, 3))
        self.bots[3].connectionLost(None)
        self.reactor.advance(self.run.opts.reconnect_delay)
        _, _, factory, *_ = self.reactor.tcpClients[-1]
        bot = self.bots[3] = factory.buildProtocol(None)
        self.transports[3] = Transport()
        bot.makeConnection(self.transports[3])
        self.feed(3, {"t": "welcome", "id": 1})
        self.feed(3, {"t": "mm.hello", "id": self.rid(3, "mm.hello"), "name": "Bot3",
                      "ticket": {"id": "t2"}, "proposal": None})
        self.assertEqual(self.run.groups[1].state, "waiting")
        self.feed(2, {"t": "mm.matched", "match": "dungeon5/a", "ticket": "adm-2"})
        self.assertEqual((self.run.groups[1].state, self.run.stats.matchedPlayers), ("thinking", 1))

    def startAndConnect(self):
        """Start the run and connect every bot it dialled to a transport of its own."""
        self.run.start()
        self.reactor.advance(1.0)
        for host, port, factory, *_ in self.reactor.tcpClients:
            bot = factory.buildProtocol(None)
            self.bots[bot.cid] = bot
            self.transports[bot.cid] = Transport()
            bot.makeConnection(self.transports[bot.cid])

    def test_busy_server_retried_failed_login_left_out(self):
        """A chat.hello refused as unavailable is sent again after retry_after; a member whose hello is refused leaves its group out of the run."""
        self.startAndConnect()
        for cid in self.bots:
            self.sent(cid)
        self.feed(1, {"t": "error", "id": self.rid(1, "hello"), "code": "session.bad_token"})
        self.assertEqual(self.run.groups[0].state, "broken")
        for cid in (2, 3):
            self.feed(cid, {"t": "welcome", "id": 1})
            self.feed(cid, {"t": "mm.hello", "id": self.rid(cid, "mm.hello"), "name": f"Bot{cid}"})
            self.sent(cid)
        self.feed(3, {"t": "error", "id": self.rid(3, "chat.hello"), "code": "chat.unavailable",
                      "retry_after": 0.5})
        self.reactor.advance(0.5)
        self.assertEqual(self.sent(3), [{"t": "chat.hello", "id": self.rid(3, "chat.hello"),
                                         "character_id": 3}])
        self.assertEqual(self.run.formed(), (0, 1))

    def test_fillCountsOnlyTheGroupsItSent(self):
        """A group broken in the connect phase is not sent in the fill: the fill's tickets and refusals count only the groups that queued."""
        self.startAndConnect()
        for cid in self.bots:
            self.sent(cid)
        self.feed(1, {"t": "error", "id": self.rid(1, "hello"), "code": "session.bad_token"})
        for cid in (2, 3):
            self.feed(cid, {"t": "welcome", "id": 1})
            self.sent(cid)  # its mm.hello
            self.feed(cid, {"t": "mm.hello", "id": self.rid(cid, "mm.hello"), "name": f"Bot{cid}",
                            "ticket": None, "proposal": None})
        self.formParty()
        self.assertEqual(self.run.groups[0].state, "broken")
        self.run.report()
        self.assertEqual(self.run.phase, "fill")
        (q,) = self.sent(2)
        self.assertEqual(q["t"], "mm.queue")
        self.feed(2, {"t": "mm.queue", "id": self.rid(2, "mm.queue"), "ticket": "t2",
                      "queue": "dungeon5", "eta_s": None})
        self.assertEqual(self.run.phase, "drain")
        fill = self.run.fillSummary()
        self.assertEqual((fill["fill_tickets"], fill["fill_refused"]), (1, 0))

    def test_partyStuckFormingDoesNotHoldTheRunBack(self):
        """A party whose invite is never answered (lost in a connect storm) holds the run in its connect phase only RAMP_STALL s once every player is ready, not the whole --ramp-timeout: the fill then sends the groups that formed."""
        self.startAndConnect()
        for cid in self.bots:
            self.sent(cid)
            self.feed(cid, {"t": "welcome", "id": 1})
            self.sent(cid)  # its mm.hello
            self.feed(cid, {"t": "mm.hello", "id": self.rid(cid, "mm.hello"), "name": f"Bot{cid}",
                            "ticket": None, "proposal": None})
        for cid in (2, 3):
            self.feed(cid, {"t": "chat.hello", "id": self.rid(cid, "chat.hello"), "party": None})
        self.feed(2, {"t": "chat.party.create", "id": self.rid(2, "chat.party.create"),
                      "party": {"id": "p1"}})  # its invite goes unanswered
        self.run.report()
        self.reactor.advance(m1.RAMP_STALL - 1)
        self.run.report()
        self.assertEqual(self.run.phase, "connect")
        self.reactor.advance(1)
        self.run.report()
        self.assertEqual(self.run.phase, "fill")
        self.assertEqual([m["t"] for m in self.sent(1)], ["mm.queue"])
        self.assertEqual([g.state for g in self.run.groups], ["queuing", "forming"])

    def test_memberDroppedMidFillEndsTheFill(self):
        """A party member whose session closes after its login while the party's mm.queue is out drops the group from the run: its mm.queue counts out once (its leader's answer still comes), and the fill ends on the other group's answer instead of waiting for ever."""
        self.connect()
        self.run.report()
        self.assertEqual(self.run.phase, "fill")
        self.sent(1)
        self.sent(2)
        self.bots[3].connectionLost(None)
        self.assertEqual(self.run.groups[1].state, "dropped")
        # The leader is still connected: its answer comes, and counts once.
        self.feed(2, {"t": "mm.queue", "id": self.rid(2, "mm.queue"), "ticket": "t2",
                      "queue": "dungeon5", "eta_s": None})
        self.assertEqual((self.run.phase, self.run.inFlight), ("fill", 1))
        self.feed(1, {"t": "mm.queue", "id": self.rid(1, "mm.queue"), "ticket": "t1",
                      "queue": "dungeon5", "eta_s": None})
        self.assertEqual((self.run.phase, self.run.inFlight), ("drain", 0))
        self.assertEqual((self.run.stats.admitted, self.run.stats.dropped), (2, 1))

    def test_groupDroppedBeforeItsTurnIsNotSent(self):
        """A group dropped while it waits for its turn in the fill is never queued, and the fill ends without it."""
        self.run.opts.window = 1
        self.connect()
        self.bots[3].connectionLost(None)
        self.reactor.advance(5.0)  # (a timer set before leaves it dropped)
        self.assertEqual(self.run.groups[1].state, "dropped")
        self.run.report()
        (q,) = self.sent(1)
        self.feed(1, {"t": "mm.queue", "id": self.rid(1, "mm.queue"), "ticket": "t1",
                      "queue": "dungeon5", "eta_s": None})
        self.assertEqual(self.sent(2), [])
        self.assertEqual(self.run.phase, "drain")
        fill = self.run.fillSummary()
        self.assertEqual((fill["fill_tickets"], fill["fill_refused"]), (1, 0))

    def test_connectionsSpreadOverSourceAddresses(self):
        """A run of the bench's size dials from several loopback addresses, none carrying more connections than one address's share of the ephemeral ports."""
        opts = m1.parseArgs(["--token-key", "k" * 40, "--tickets", "10371"])
        run = m1.GroupRun(MemoryReactorClock(), opts, ROLES)
        self.assertEqual(run.players, 19499)
        per = collections.Counter()
        for group in run.groups:
            for member in group.group.members:
                run.connect(group, member)
        for _, _, _, _, (source, port) in run.reactor.tcpClients:
            per[source] += 1
        self.assertEqual(port, 0)
        self.assertGreaterEqual(len(per), 5)
        self.assertLessEqual(max(per.values()), m1.PER_SOURCE)
        self.assertLessEqual(m1.PER_SOURCE, 14116 // 4)

    def test_loginDroppedBeforeItsWelcomeTriesAgain(self):
        """A connection dropped before its welcome (the node closed it at hello_timeout) connects again to the same node after 1-2 s; one dropped after its welcome does not (without --reconnect)."""
        self.startAndConnect()
        first = len(self.reactor.tcpClients)
        self.feed(2, {"t": "welcome", "id": 1})
        self.bots[1].connectionLost(None)
        self.bots[2].connectionLost(None)
        self.reactor.advance(2.0)
        again = self.reactor.tcpClients[first:]
        self.assertEqual([(f.member.character_id, port) for _, port, f, *_ in again],
                         [(1, self.reactor.tcpClients[0][1])])
        self.assertEqual((self.run.stats.disconnects, self.run.stats.loginRetries), (2, 1))

    def test_reconnectionDroppedBeforeItsWelcomeTriesTheSameNode(self):
        """With --reconnect (the crash run), a login dropped before its welcome tries the same node again rather than moving on, and a reconnection retried stays one; a welcomed session that drops moves to the next node."""
        self.run.opts.reconnect = True
        self.run.addresses.append(("127.0.0.1", 7001))
        self.startAndConnect()
        ports = {cid: self.run.addresses[bot.address][1] for cid, bot in self.bots.items()}
        self.feed(2, {"t": "welcome", "id": 1})
        first = len(self.reactor.tcpClients)
        self.bots[1].again = True  # itself a reconnection, whose node dropped it pre-welcome
        self.bots[1].connectionLost(None)
        self.bots[2].connectionLost(None)
        self.reactor.advance(2.0)
        again = {f.member.character_id: (port, f.again)
                 for _, port, f, *_ in self.reactor.tcpClients[first:]}
        self.assertEqual(again, {1: (ports[1], True),
                                 2: ({7000, 7001}.difference({ports[2]}).pop(), True)})
        self.assertEqual((self.run.stats.loginRetries, self.run.stats.reconnects), (1, 1))

    def test_refusedConnectionMovesOnWithReconnect(self):
        """With --reconnect, a connection its node refuses (the node is dead) is tried on the next node, as the reconnection it was; without it, the refusal is only counted."""
        self.run.addresses.append(("127.0.0.1", 7001))
        group, member = self.run.groups[0], self.plan[0].members[0]
        factory = m1.BotFactory(self.run, group, member, 0, True)
        factory.clientConnectionFailed(None, None)
        self.reactor.advance(5.0)
        self.assertEqual((self.run.stats.failed, len(self.reactor.tcpClients)), (1, 0))
        self.run.opts.reconnect = True
        factory.clientConnectionFailed(None, None)
        self.reactor.advance(self.run.opts.reconnect_delay)
        ((_, port, retried, *_),) = self.reactor.tcpClients
        self.assertEqual((port, retried.address, retried.again, self.run.stats.failed),
                         (7001, 1, True, 2))

    def test_shedRequestSentAgainWithItsOwnBody(self):
        """A leader's invite shed with server.busy while another is out is sent again to the same member, not to the one invited last."""
        self.connect()
        leader = self.bots[2]
        leader.request("chat.party.invite", {"name": "Ann"})
        first = self.rid(2, "chat.party.invite")
        leader.request("chat.party.invite", {"name": "Bob"})
        self.sent(2)
        self.feed(2, {"t": "error", "id": first, "code": "server.busy", "retry_after": 1.0})
        self.reactor.advance(2.0)
        self.assertEqual([m["name"] for m in self.sent(2) if m["t"] == "chat.party.invite"], ["Ann"])

    def test_backOffStartsOverAfterAnAnswer(self):
        """Requests shed with server.busy back off, doubling; once one is answered the next shed one is sent again after the first delay, not the doubled one (an accept kept waiting past its ready check)."""
        self.connect()
        bot = self.bots[2]
        for _ in range(4):
            bot.request("chat.party.invite", {"name": "Ann"})
            self.sent(2)
            self.feed(2, {"t": "error", "id": self.rid(2, "chat.party.invite"), "code": "server.busy",
                          "retry_after": 1.0})
        self.reactor.advance(30.0)
        self.sent(2)
        self.feed(2, {"t": "chat.party.invite", "id": self.rid(2, "chat.party.invite")})
        bot.request("mm.accept", {"match": "m1"})
        self.sent(2)
        self.feed(2, {"t": "error", "id": self.rid(2, "mm.accept"), "code": "server.busy",
                      "retry_after": 1.0})
        self.reactor.advance(1.5)  # the first delay, jittered: 0.5-1.5 s
        self.assertEqual([m["t"] for m in self.sent(2)], ["mm.accept"])

    def test_stale_hello_answer_ignored(self):
        """A reconnected bot's mm.hello answer older than an event its group heard since (a proposal) changes nothing."""
        self.run.opts.reconnect = True
        self.run.addresses.append(("127.0.0.1", 7001))
        self.queueBoth()
        clients = len(self.reactor.tcpClients)
        self.bots[2].connectionLost(None)
        self.reactor.advance(self.run.opts.reconnect_delay)
        bot = self.reactor.tcpClients[clients][2].buildProtocol(None)
        self.bots[2] = bot
        self.transports[2] = Transport()
        bot.makeConnection(self.transports[2])
        self.feed(2, {"t": "welcome", "id": 1})
        self.propose("dungeon5/x", roster=(1, 3))
        self.assertEqual(self.run.groups[1].state, "proposed")
        self.feed(2, {"t": "mm.hello", "id": self.rid(2, "mm.hello"), "name": "Bot2", "ticket": None,
                      "proposal": None})
        self.assertEqual((self.run.groups[1].state, self.run.stats.vanished), ("proposed", {}))
