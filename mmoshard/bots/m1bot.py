"""One M1 bot's connection and its group: session, mm.hello, a party formed through chat, the ticket's life (queue, ready check, matched, requeued, removed)."""

import sys

from twisted.internet.protocol import Protocol

from mmoshard.bots.m1plan import declines
from mmoshard.wire.codec import decode, encode
from mmoshard.wire.framing import FrameDecoder, frame

# Requests of the connecting and forming that a busy server may refuse for
# a moment: sent again after its retry_after (or a second), a few times.
RETRIED = frozenset(("mm.hello", "chat.hello", "chat.party.leave", "chat.party.create", "mm.accept",
                     "chat.party.invite", "chat.party.accept"))
RETRIES = 5


class M1Bot(Protocol):
    """
    One character of a L{GroupRun}: hello, C{mm.hello}, and for a party
    member C{chat.hello} (leaving any party left over from an earlier run);
    then it answers ready checks (accept, or decline when the match is one
    its run declines and it is the roster's first) and tells its group
    what happens to their ticket.
    """

    def __init__(self, run, group, member, address=0, again=False):
        self.run = run
        self.group = group
        self.member = member
        self.address = address  # index of the run's address it connected to
        self.again = again  # a reconnection (its node died): its party and ticket carry on
        self.cid = member.character_id
        self.decoder = FrameDecoder(1 << 22)
        self.name = None
        self.ready = False
        self.closing = False
        self.matchedGeneration = 0  # its group's ticket it last got mm.matched for
        self.matchedId = None  # the match of that mm.matched
        self.firstOf = None  # the last match whose roster it heads (it counts that match)
        # request id -> (type, body) of each request not yet answered: an error
        # names its request by id only, and a leader's invites are out together.
        self.sent = {}
        self.lastId = 0
        self.helloEpoch = 0  # its group's epoch when it sent mm.hello
        self.welcomed = False  # its hello was answered
        self.retries = 0
        self.busy = 0  # server.busy answers since its last answer (its back-off)

    def request(self, t, body):
        """Send request C{t} with C{body}, under a new id."""
        if self.transport is None or self.closing:
            return
        self.lastId += 1
        self.sent[self.lastId] = (t, body)
        self.transport.write(frame(encode(dict(body, t=t, id=self.lastId))))

    def close(self):
        self.closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionMade(self):
        self.run.stats.connected += 1
        self.transport.setTcpNoDelay(True)
        self.request("hello", {"token": self.run.token(self.cid), "client_version": "bots-1",
                               "platform": "bots"})

    def connectionLost(self, reason):
        run = self.run
        if not (run.stopping or self.closing):
            run.stats.disconnects += 1
            if not self.welcomed:
                # Its login never completed (the node, busy with the storm,
                # closed it at hello_timeout): a player tries again, on the
                # same node (a dead one refuses, and --reconnect goes on to
                # the next: BotFactory.clientConnectionFailed).
                run.retryLogin(self)
            elif run.opts.reconnect:
                run.reconnect(self)
            else:
                self.group.memberDropped(self)

    def dataReceived(self, data):
        for p in self.decoder.feed(data):
            self.handle(decode(p))

    def handle(self, m):
        t = m["t"]
        group = self.group
        if t != "error" and "id" in m:
            self.sent.pop(m["id"], None)
            # An answer: the back-off starts over, as a client's does.  Kept
            # from the login storm, it held a ready check's accept back past
            # the check's 20 s (396 tickets removed by timeout in one run).
            self.busy = 0
        if t == "ping":
            self.transport.write(frame(encode({"t": "pong", "n": m.get("n")})))
        elif t == "mm.proposal":
            self.proposed(m)
        elif t == "mm.matched":
            group.matched(self, m)
        elif t == "mm.requeued":
            group.requeued(self, m)
        elif t == "mm.removed":
            group.removed(self, m.get("reason"), m.get("ticket"))
        elif t == "error":
            self.error(m)
        elif t == "mm.queue":
            group.admitted(self, m)
        elif t == "mm.decline":
            group.removed(self, "declined", m.get("ticket"))
        elif t == "mm.accept":
            pass
        elif t == "welcome":
            self.welcomed = True
            self.helloEpoch = group.epoch
            self.request("mm.hello", {"character_id": self.cid})
        elif t == "mm.status":
            group.audited(m)
        elif t == "mm.hello":
            self.name = m.get("name")
            if self.again:
                group.resync(self, m)
            if group.size > 1:
                self.request("chat.hello", {"character_id": self.cid})
            else:
                self.isReady()
        elif t == "chat.hello":
            if m.get("party") and not self.again:
                self.request("chat.party.leave", {})
            else:
                self.isReady()
        elif t == "chat.party.leave":
            self.isReady()
        elif t == "chat.party.invited":
            if m.get("from") == group.group.leader.character_id:
                self.request("chat.party.accept", {"party_id": m["party_id"]})
        elif t == "chat.party.create":
            group.partyCreated(self)
        elif t == "chat.party.update":
            group.partyUpdate(self, m)

    def isReady(self):
        if not self.ready:
            self.ready = True
            if not self.again:
                self.run.stats.ready += 1
            self.group.memberReady(self)

    def proposed(self, m):
        """A ready check: counted, then accepted, or declined by the roster's first when its match is declined."""
        run = self.run
        match = m["match"]
        roster = m.get("roles") or ()
        first = roster[0]["character_id"] if roster else self.cid
        if first == self.cid:
            self.firstOf = match
        run.proposalSeen(self, match, first == self.cid, len(roster))
        self.group.proposed(self, match)
        if first == self.cid and declines(match, run.opts.seed, run.opts.decline):
            run.stats.declinesSent += 1
            self.request("mm.decline", {"match": match})
        else:
            self.request("mm.accept", {"match": match})

    def error(self, m):
        run = self.run
        code = m.get("code")
        run.stats.errors[code] += 1
        t, body = self.sent.pop(m.get("id") or 0, (None, {}))
        retryAfter = m.get("retry_after")
        if t == "mm.queue":
            self.group.refused(self, code, retryAfter)
        elif t == "chat.party.leave" and code == "chat.not_in_party":
            self.isReady()
        elif t in RETRIED and code == "server.busy":
            # The node shed the request (nothing done): a client tries again, however
            # often, backing off (doubling, up to 16 s, jittered) so as not to add to it.
            self.busy += 1
            delay = min(16.0, (retryAfter or 1.0) * 2 ** (self.busy - 1))
            run.reactor.callLater(delay * (0.5 + run.random.random()), self.request, t, body)
        elif t in RETRIED and self.retries < RETRIES and (
                retryAfter or str(code).endswith(".unavailable") or code == "chat.busy"):
            self.retries += 1
            run.reactor.callLater(retryAfter or 1.0, self.request, t, body)
        elif t in ("hello", "mm.hello", "chat.hello"):
            run.stats.failed += 1
            self.group.formingFailed(self, code)
            self.close()
        elif t in ("chat.party.create", "chat.party.invite", "chat.party.accept"):
            self.group.formingFailed(self, code)


class BotGroup:
    """
    The bots of one L{mmoshard.bots.m1plan.Group}: a solo player or a party
    (its leader invites the others by name through chat, then waits
    C{settle} seconds for the party's change to reach the matchmakers).
    States: C{connecting}, C{forming}, C{settling}, C{idle} (the run may
    queue it), C{queuing} (mm.queue sent), C{waiting} (a ticket), C{proposed},
    C{thinking} (matched or removed; idle again after the run's think time),
    C{broken} (a party that could not form: left out), C{dropped} (a
    member's session closed after its login, with no reconnection: left out).
    """

    def __init__(self, run, group):
        self.run = run
        self.group = group
        self.size = group.size
        self.bots = {}  # character id -> M1Bot
        self.state = "connecting"
        self.epoch = 0  # state changes so far
        self.ticket = None
        self.sentAt = None
        self.admittedAt = None
        self.matchableAt = None  # None: not matchable at its admission
        self.proposedOnce = False  # this ticket had its first proposal
        self.match = None
        self.created = 0.0  # epoch seconds of its admission, as the generator saw it
        self.inWindow = False
        self.joined = set()
        self.generation = 0  # tickets queued so far
        self.matchedMatch = None  # the match its last ticket ended in
        self.matchedBy = set()  # members who got that match's mm.matched
        self.generationOf = {}  # match id -> the ticket (generation) it was proposed to
        self.queueOut = False  # its mm.queue counts in the run's requests in flight

    @property
    def leader(self):
        return self.bots.get(self.group.leader.character_id)

    def setState(self, state):
        if self.state == "dropped":
            return  # (left the run: a timer set before stays without effect)
        self.state = state
        self.epoch += 1
        if state == "idle":
            self.run.becameIdle(self)

    # -- forming ----------------------------------------------------------------------

    def memberReady(self, bot):
        self.bots[bot.cid] = bot
        if self.state != "connecting":
            return  # a reconnection: the party is formed already
        if len(self.bots) < self.size or not all(b.ready for b in self.bots.values()):
            return
        if self.size == 1:
            self.setState("idle")
            return
        self.setState("forming")
        self.leader.request("chat.party.create", {})

    def partyCreated(self, bot):
        """The leader's party exists: it invites the others by name."""
        if self.state == "forming" and bot is self.leader:
            for m in self.group.members[1:]:
                bot.request("chat.party.invite", {"name": self.bots[m.character_id].name})

    def partyUpdate(self, bot, m):
        if self.state != "forming" or bot is not self.leader:
            return
        party = m.get("party") or {}
        self.joined = {int(c) for c, *_ in party.get("members") or ()}
        if self.joined >= {mm.character_id for mm in self.group.members}:
            self.setState("settling")
            self.run.reactor.callLater(self.run.opts.settle, self.setState, "idle")

    def memberDropped(self, bot):
        """
        C{bot}'s session closed after its login, and the run does not
        reconnect: its group leaves the run (C{dropped}), its mm.queue in
        flight, if any, counting as answered so that the fill ends.
        """
        if self.state in ("broken", "dropped"):
            return
        self.unwait()
        self.match = None
        self.state = "dropped"
        self.run.stats.dropped += 1
        print(f"[m1] group of character {bot.cid} dropped: its session closed", file=sys.stderr,
              flush=True)
        # (its answer may still come, to a member still connected: counted out once)
        if self.queueOver():
            self.run.queueAnswered()

    def formingFailed(self, bot, code):
        """A member could not connect or the party could not form: the group is left out of the run."""
        if self.state in ("connecting", "forming"):
            self.state = "broken"
            self.run.stats.broken += 1

    # -- the ticket ------------------------------------------------------------------------

    def queue(self, now):
        """Send the leader's mm.queue (the run chose this idle group)."""
        self.setState("queuing")
        self.sentAt = now
        self.generation += 1
        self.ticket = None
        self.proposedOnce = False
        self.inWindow = self.run.measuring
        self.run.stats.queueSent += 1
        self.queueOut = True
        self.leader.request("mm.queue", {"queue": self.group.queue})

    def queueOver(self):
        """@return: whether its mm.queue still counted in flight (no longer, now): each counts out once."""
        out, self.queueOut = self.queueOut, False
        return out

    def admitted(self, bot, m):
        run = self.run
        now = run.now()
        self.ticket = m.get("ticket")
        self.admittedAt = now
        run.ticketAdmitted(self, now - self.sentAt, self.queueOver())
        if self.state == "queuing":  # (its proposal may have come first)
            self.setState("waiting")
            self.wait(now, admission=True)

    def wait(self, now, admission=False):
        """The ticket waits in its queue: in the run's copy of it (a requeued one at its old place)."""
        shadow = self.run.shadow(self.group.queue)
        if shadow is not None and self.ticket:
            if admission:
                self.created = self.run.clock()
            shadow.add(self, self.group.members, self.ticket, self.created, fresh=admission and self.inWindow)

    def unwait(self):
        """Out of the run's copy of the queue. @return: whether it left before the first look at it."""
        shadow = self.run.shadow(self.group.queue)
        if shadow is not None and self.ticket:
            return shadow.remove(self.ticket)
        return False

    def refused(self, bot, code, retryAfter):
        """mm.queue refused: idle again after the think time (or the retry_after)."""
        self.run.stats.refused[code] += 1
        if self.queueOver():
            self.run.queueAnswered()
        self.think(retryAfter)

    def proposed(self, bot, match):
        if match == self.match:
            return
        self.generationOf.setdefault(match, self.generation)
        if self.unwait() or self.state == "queuing":
            # Proposed before the run's first look at it (or its answer): it could be matched.
            self.matchableAt = self.run.now()
        self.match = match
        if not self.proposedOnce:
            self.proposedOnce = True
            self.run.firstProposal(self, self.run.now())
        self.setState("proposed")

    def matched(self, bot, m):
        """A member's mm.matched: the first for the group's match ends its ticket; each member should get one."""
        run = self.run
        match = m.get("match")
        if self.generationOf.setdefault(match, self.generation) < self.generation:
            # An earlier ticket's match told again (a new lease holder
            # announcing what the dead one completed) after this group queued
            # anew: not this ticket's.
            run.stats.retold += 1
            return
        run.stats.matchedPlayers += 1
        if bot.matchedGeneration == self.generation:
            if match != bot.matchedId:
                # A second match for one ticket: a character placed twice.
                run.stats.duplicates += 1
                print(f"[m1] duplicate: character {bot.cid} got {match} after {bot.matchedId} "
                      f"for one ticket", file=sys.stderr, flush=True)
            else:
                # The same match told again (a new lease holder announcing
                # what the dead one completed, a holder sending again what
                # did not reach a member, or mm.hello on the node the player
                # reconnected to): the same instance, placed once.
                run.stats.retold += 1
        bot.matchedGeneration = self.generation
        bot.matchedId = match
        if bot.firstOf == match:
            run.stats.matches += 1
        if (self.state == "proposed" and match == self.match) or self.state == "waiting":
            # (Waiting: its proposal was not seen, or an answer took it for
            # requeued; mm.matched of this ticket's match is what counts.)
            self.matchedMatch = match
            self.matchedBy = {bot.cid}
            self.match = None
            self.think()
        elif match == self.matchedMatch:
            self.matchedBy.add(bot.cid)

    def requeued(self, bot, m):
        """A member's mm.requeued for the group's match: the ticket waits again, at its old place."""
        if self.state == "proposed" and m.get("match") == self.match:
            self.run.stats.requeued += 1
            self.match = None
            self.setState("waiting")
            self.wait(self.run.now())

    def removed(self, bot, reason, ticket):
        if self.state not in ("waiting", "proposed", "queuing") or (ticket and ticket != self.ticket):
            return
        self.run.stats.removed[reason] += 1
        self.unwait()
        self.match = None
        self.think()

    def resync(self, bot, m):
        """
        C{bot} reconnected (its node died) and said mm.hello again: its
        answer tells where the ticket is.  A ticket gone with no event
        (that went to the dead node) counts as vanished; a ready check
        over is a requeue (an unanswered one comes again as mm.proposal).
        """
        if self.state not in ("waiting", "proposed") or bot.helloEpoch != self.epoch:
            return  # (the answer is older than what the group heard since)
        if m.get("ticket") is None:
            self.run.stats.vanished[self.state] += 1
            print(f"[m1] ticket {self.ticket} of {self.group.queue} ({self.state}, members "
                  f"{[mm.character_id for mm in self.group.members]}) unknown to "
                  f"character {bot.cid}'s mm.hello", file=sys.stderr, flush=True)
            self.unwait()
            self.match = None
            self.think()
        elif self.state == "proposed" and m.get("proposal") is None:
            self.run.stats.requeued += 1
            self.match = None
            self.setState("waiting")
            self.wait(self.run.now())

    def audited(self, m):
        """The end of the run's mm.status: a ticket the bots hold that the server does not is lost."""
        if self.state == "waiting" and m.get("ticket") is None:
            self.run.stats.lost += 1
            print(f"[m1] ticket {self.ticket} of {self.group.queue} lost (mm.status)",
                  file=sys.stderr, flush=True)
            self.run.lostTickets.append(self.ticket)

    def think(self, seconds=None):
        """The ticket is over: idle again after the run's think time."""
        self.unwait()
        self.ticket = None
        self.matchableAt = None
        self.setState("thinking")
        self.run.reactor.callLater(seconds or self.run.opts.think, self.rested)

    def rested(self):
        """Idle again; a member who never got its match's mm.matched is counted as having missed it."""
        if self.matchedMatch is not None:
            self.run.stats.missedMatched += self.size - len(self.matchedBy)
            self.matchedMatch = None
            self.matchedBy = set()
        self.setState("idle")
