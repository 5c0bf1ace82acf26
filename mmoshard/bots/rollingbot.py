"""One bot of the rolling-restart run: walks in the world timing world.u, whispers and speaks in its party with numbered messages, queues its party for matchmaking, and notes every session that ends."""

import math
import random

from twisted.internet.error import ConnectionLost

from mmoshard.bots.combat import NPC_BASE
from mmoshard.wire.client import RequestError, SessionClient
from mmoshard.world.client import WorldClient

SPEED = 5.0  # m/s a walker walks at
CIRCLE = 8.0  # metres: the radius of the circle a walker walks round
STEP = 0.2  # seconds between two moves (5 Hz)
WHISPER_EVERY = 2.0  # seconds between two whispers of one bot
SAY_EVERY = 3.0  # seconds between two party messages of one bot
REQUEUE_AFTER = 2.0  # seconds a matched party rests before its leader queues it again
RETRY = 1.0  # seconds before a refused request goes again
QUEUE = "dungeon5"


class RollingSession(SessionClient):
    """
    A session client that can be made to stay away C{hold} seconds before
    it resumes (a player link-dead at the moment a node drains).
    """

    hold = 0.0

    async def _resume(self):
        hold, self.hold = self.hold, 0.0
        if hold:
            await self._pause(hold)
        return await SessionClient._resume(self)


def watchEnd(bot, role, session):
    """Count C{session}'s end in C{bot}'s run unless the bot closed it itself."""

    def ended(reason):
        if reason != "closed":
            bot.run.sessionEnded(bot, role, reason)

    session.ended.addCallback(ended)


class RollingWorld(WorldClient):
    """
    The world client of a bot: its sessions resume on the other world nodes
    too; after a resume that moved the session without a transfer to follow
    it enters again; every world.u goes to the bot.
    """

    def __init__(self, bot, address, token, characterId, alternates):
        WorldClient.__init__(self, bot.run.reactor, address, token, characterId, retries=60)
        self.bot = bot
        self.alternates = alternates

    async def _connect(self, address):
        others = [a for a in self.alternates if a.replace("tcp:", "") != address.replace("tcp:", "")]
        session = RollingSession(self.reactor, address, self.token, onEvent=self.received,
                                 clientVersion="rolling-bot", alternates=others,
                                 onMoved=self._moved)
        watchEnd(self.bot, "world", session)
        await session.connect()
        return session

    def received(self, m):
        WorldClient.received(self, m)
        self.bot.worldEvent(m)

    def _moved(self, reply):
        self.bot.run.later(1.0, self._enterAgain, self.transfers)

    def _enterAgain(self, transfers):
        # A world.transfer replayed after the resume is followed by itself.
        following = self._following is not None and not self._following.called
        if self.transfers == transfers and not following:
            self.bot.run.track(self.enter())


class RollingBot:
    """
    One player with three sessions, each on one node of its role: world,
    chat and matchmaking.  C{run} is the L{mmoshard.bots.rolling.RollingRun}
    counting what the bots see.
    """

    def __init__(self, run, cid, party, fighter=None):
        self.run = run
        self.cid = cid
        self.name = f"Bot{cid}"
        self.party = party  # the character ids of its party, leader first
        self.leader = party[0] == cid
        self.random = random.Random(cid)
        self.fighter = fighter
        self.world = self.chat = self.mm = None
        self.lastU = None
        self.sawPlayer = False
        self.maxGap = 0.0
        self.heading = self.random.uniform(0, 2 * math.pi)
        self.home = None
        self.whispers = 0
        self.says = 0
        self.heard = {}  # (from, n) -> times a whisper came
        self.partyHeard = {}  # (from, n) -> times a party message came
        self.inHistory = set()  # (from, n) seen in the party history
        self.ticket = None  # the leader's idea of its party's ticket: None, "queued", "matched"
        self.matches = 0
        self.dead = False
        self.stopped = False

    # -- connecting -------------------------------------------------------

    def session(self, role, index):
        addresses = self.run.cluster.addresses(role)
        address = addresses[index % len(addresses)]
        others = [a for a in addresses if a != address]
        s = RollingSession(self.run.reactor, address, self.run.token(self.cid),
                           onEvent=getattr(self, f"{role}Event"), clientVersion="rolling-bot",
                           alternates=others, onMoved=lambda reply: self.moved(role))
        watchEnd(self, role, s)
        return s

    async def connect(self):
        """Open the three sessions, say hello to chat and matchmaking, enter the world."""
        run = self.run
        self.chat = self.session("chat", self.cid)
        await self.chat.connect()
        await self.chat.request("chat.hello", character_id=self.cid)
        self.mm = self.session("matchmaking", self.cid + 1)
        await self.mm.connect()
        await self.mm.request("mm.hello", character_id=self.cid)
        worlds = run.cluster.addresses("world")
        self.world = RollingWorld(self, worlds[self.cid % len(worlds)], run.token(self.cid),
                                  self.cid, worlds)
        reply = await self.world.enter()
        if self.fighter is not None:
            self.fighter = self.fighter(reply)

    def moved(self, role):
        if role == "matchmaking":
            # Picks up the ticket, and a proposal or match it may have missed;
            # the requests made meanwhile wait for it.
            return self.run.track(self.mm.request("mm.hello", character_id=self.cid))
        return None

    async def formParty(self):
        """The leader invites the others; each accepts when invited (L{chatEvent})."""
        for cid in self.party[1:]:
            await self.retried(self.chat, "chat.party.invite", name=f"Bot{cid}")

    # -- the loops ----------------------------------------------------------

    def start(self):
        run = self.run
        run.every(STEP, self.step, self.random.uniform(0, STEP))
        run.every(WHISPER_EVERY, self.whisper, self.random.uniform(0, WHISPER_EVERY))
        if len(self.party) > 1:
            run.every(SAY_EVERY, self.say, self.random.uniform(0, SAY_EVERY))
            run.every(5.0, self.history, self.random.uniform(0, 5.0))
        if self.leader and len(self.party) == 5:
            run.track(self.queue())

    def step(self):
        w = self.world
        if self.stopped or w is None or w.session is None or w.zone is None:
            return
        now = self.run.now()
        if self.fighter is not None:
            self.fighter.step(self, now)
            return
        if self.home is None:
            self.home = (w.x - CIRCLE * math.cos(self.heading), w.z - CIRCLE * math.sin(self.heading))
        # Round a circle about where it entered: the crowd in view stays the same.
        self.heading += SPEED * STEP / CIRCLE
        c, s = math.cos(self.heading), math.sin(self.heading)
        self.sendMove(self.home[0] + CIRCLE * c, self.home[1] + CIRCLE * s, -SPEED * s, SPEED * c)

    def sendMove(self, x, z, vx, vz):
        try:
            self.world.move(x, z, vx, vz)
        except ConnectionLost:
            pass  # resuming or moving: the next step goes

    def whisper(self):
        if self.stopped:
            return
        to = self.run.whisperTarget(self)
        self.whispers += 1
        self.run.track(self.sendWhisper(to, self.whispers))

    async def sendWhisper(self, to, n):
        run = self.run
        text = f"w:{self.cid}:{n}"
        for _ in range(20):
            try:
                await self.chat.request("chat.whisper", to=f"Bot{to}", text=text)
            except RequestError as e:
                if e.code == "chat.offline":
                    run.stats.whisperOffline += 1
                else:
                    run.stats.errors[e.code] += 1
            except ConnectionLost:
                run.stats.whisperUnanswered += 1
                return
            else:
                run.whisperSent(self.cid, n, to)
                return
            await self.run.sleep(RETRY)
        run.stats.whisperGivenUp += 1

    def say(self):
        if self.stopped:
            return
        self.says += 1
        self.run.track(self.sendSay(self.says))

    async def sendSay(self, n):
        try:
            await self.chat.request("chat.party.say", text=f"p:{self.cid}:{n}")
        except RequestError as e:
            self.run.stats.errors[e.code] += 1
        except ConnectionLost:
            self.run.stats.sayUnanswered += 1
        else:
            self.run.partySent(self, n)

    def history(self):
        if not self.stopped:
            self.run.track(self.readHistory())

    async def readHistory(self):
        try:
            reply = await self.chat.request("chat.history", party=True)
        except (RequestError, ConnectionLost):
            return
        for entry in reply.get("history") or ():
            seen = parseNumbered(entry.get("text"), "p")
            if seen is not None:
                self.inHistory.add(seen)

    async def queue(self):
        """The leader queues its party for dungeon5, again after each match."""
        self.ticket = None
        while not self.stopped:
            try:
                await self.mm.request("mm.queue", queue=QUEUE)
            except RequestError as e:
                self.run.stats.errors[e.code] += 1
                if e.code == "mm.already_queued":
                    self.ticket = "queued"
                    return
            except ConnectionLost:
                pass
            else:
                self.ticket = "queued"
                self.run.stats.ticketsQueued += 1
                return
            await self.run.sleep(RETRY)

    async def retried(self, session, kind, **body):
        for attempt in range(20):
            try:
                return await session.request(kind, **body)
            except (RequestError, ConnectionLost):
                if attempt == 19:
                    raise
                await self.run.sleep(RETRY)

    # -- events -------------------------------------------------------------

    def worldEvent(self, m):
        t = m["t"]
        if t == "world.u":
            now = self.run.now()
            if self.lastU is not None and self.sawPlayer:
                self.run.worldGap(self, now - self.lastU)
            self.lastU = now
            # A gap counts only after an update that showed a player that
            # never stops walking: nothing in view moving sends nothing.
            walking = self.run.walking
            self.sawPlayer = any(e < NPC_BASE and e != self.cid and walking(e)
                                 for e in self.world.entities)
            if self.fighter is not None:
                self.fighter.seen(m, now)
        elif t == "world.progress":
            self.run.stats.progress += 1
        elif t == "world.loot":
            self.run.stats.loot += 1

    def chatEvent(self, m):
        t = m["t"]
        if t == "chat.whisper":
            key = parseNumbered(m.get("text"), "w")
            if key is not None:
                self.heard[key] = self.heard.get(key, 0) + 1
        elif t == "chat.party.message":
            key = parseNumbered(m.get("text"), "p")
            if key is not None:
                self.partyHeard[key] = self.partyHeard.get(key, 0) + 1
        elif t == "chat.party.invited":
            self.run.track(self.retried(self.chat, "chat.party.accept", party_id=m["party_id"]))

    def matchmakingEvent(self, m):
        t = m["t"]
        if t == "mm.proposal":
            self.run.track(self.accept(m["match"]))
        elif t == "mm.matched" and self.leader and self.ticket == "queued":
            self.ticket = "matched"
            self.matches += 1
            self.run.stats.matches += 1
            self.run.later(REQUEUE_AFTER, lambda: self.run.track(self.queue()))
        elif t == "mm.removed":
            self.run.stats.removed[m.get("reason")] += 1
            if self.leader and m.get("reason") != "gone":
                self.ticket = None
                self.run.later(REQUEUE_AFTER, lambda: self.run.track(self.queue()))

    async def accept(self, match):
        try:
            await self.mm.request("mm.accept", match=match)
        except RequestError as e:
            self.run.stats.errors[e.code] += 1
        except ConnectionLost:
            pass

    # -- the end ------------------------------------------------------------

    async def ticketKept(self):
        """@return: whether the leader's party still holds what it thinks it holds (a ticket, a proposal or its match)."""
        if not self.leader or self.ticket != "queued":
            return True
        try:
            reply = await self.mm.request("mm.status")
        except (RequestError, ConnectionLost):
            return None  # unknown: counted apart
        return bool(reply.get("ticket") or reply.get("proposal") or reply.get("matched"))

    async def close(self):
        self.stopped = True
        for s in (self.chat, self.mm):
            if s is not None:
                await closeQuietly(s)
        if self.world is not None and self.world.session is not None:
            await closeQuietly(self.world.session)


async def closeQuietly(session):
    try:
        await session.close()
    except Exception:
        session.drop()


def parseNumbered(text, kind):
    """@return: (sender id, number) of a bot's C{kind}:sender:n text, or None."""
    parts = (text or "").split(":")
    if len(parts) != 3 or parts[0] != kind:
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None

