"""A Python world client over the session client: enters, moves, tracks what it sees, follows redirects and zone transfers."""

import time
from collections import namedtuple

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.wire.client import RequestError, SessionClient
from mmoshard.world.combat import records as R
from mmoshard.world.interest import MOVE

# One decoded combat record of a world.u's C{c} field (docs/combat.md has the table).
CombatEvent = namedtuple("CombatEvent", "kind flags ability a b value")


class WorldClient:
    """
    One character in the world.  C{enter()} connects and enters, following a
    redirect to the process hosting the character's zone and retrying while
    the character is busy elsewhere.  A C{world.transfer} (a portal to a zone
    on another process) is followed automatically: the client connects to
    the new process and enters there with the ticket; C{transfers} counts
    them and C{onTransfer} (a Deferred replaced each time) fires after.

    Combat: C{combat} is the combat state of the last world.enter,
    world.zone or world.reset (its C{abilities} decode ability numbers);
    C{health} keeps [hp, hp_max, dead] of the entities in view (and of
    itself) from enter records and HEALTH, DEATH and REVIVE records;
    C{combatEvents} collects every decoded L{CombatEvent} (a bot reads and
    clears it).
    """

    log = Logger()

    def __init__(self, reactor, address, token, characterId, retries=20):
        self.reactor = reactor
        self.address = address
        self.token = token
        self.characterId = characterId
        self.retries = retries
        self.session = None
        self.zone = None
        self.x = self.y = self.z = 0.0
        self.k = 0
        self.entities = {}  # id -> [x, z] of what we see
        self.corrections = []
        self.transfers = 0
        self.onTransfer = Deferred()
        self.events = []
        self.combat = None
        self.health = {}  # entity id -> [hp, hp_max, dead]
        self.combatEvents = []
        self._following = None

    async def _connect(self, address):
        session = SessionClient(self.reactor, address, self.token, onEvent=self.received,
                                clientVersion="world-client")
        await session.connect()
        return session

    async def enter(self, ticket=None):
        """Connect (if needed) and enter. @return: the world.enter reply."""
        for attempt in range(self.retries):
            if self.session is None:
                self.session = await self._connect(self.address)
            body = {"character_id": self.characterId}
            if ticket:
                body["ticket"] = ticket
            try:
                reply = await self.session.request("world.enter", **body)
            except RequestError as e:
                if e.code == "world.character_busy" and attempt + 1 < self.retries:
                    await deferLater(self.reactor, e.retry_after or 1.0, lambda: None)
                    continue
                raise
            redirect = reply.get("redirect")
            if redirect is not None:
                await self._switch(redirect["tcp"])
                continue
            self._entered(reply)
            return reply
        raise RequestError({"code": "world.character_busy", "message": "gave up"})

    async def _switch(self, address):
        old, self.session = self.session, None
        self.address = address
        self.entities = {}
        self.health = {}
        if old is not None:
            try:
                await old.close()
            except Exception:
                old.drop()

    def _entered(self, reply):
        self.zone = reply["zone"]["id"]
        self.x, self.y, self.z, self.k = reply["x"], reply["y"], reply["z"], reply["k"]
        self._combatState(reply)

    def _combatState(self, body):
        c = body.get("combat")
        self.combat = c
        if c is not None:
            self.health[self.characterId] = [c["hp"], c["hp_max"], c["dead"]]

    def abilityByNum(self, num):
        """@return: the ability (as world.enter described it) whose wire number is C{num}, or None."""
        for a in (self.combat or {}).get("abilities", ()):
            if a["num"] == num:
                return a
        return None

    async def cast(self, ability, target=None, x=None, z=None):
        """
        Cast C{ability} at entity C{target} or the point (x, z).
        @return: the cast time in ms. @raise RequestError: refused (its C{code}).
        """
        body = {"ability": ability}
        if target is not None:
            body["target"] = target
        if x is not None:
            body["x"], body["z"] = float(x), float(z)
        reply = await self.session.request("world.cast", **body)
        return reply["cast_ms"]

    async def stopCast(self):
        """@return: True when a cast was stopped."""
        return (await self.session.request("world.stop_cast"))["stopped"]

    async def release(self):
        """Dead: respawn at the zone's graveyard. @return: the reply {x, y, z, k}."""
        reply = await self.session.request("world.release")
        self.x, self.y, self.z, self.k = reply["x"], reply["y"], reply["z"], reply["k"]
        return reply

    def move(self, x, z, vx=0.0, vz=0.0):
        """Send a move (position, velocity, client time, correction count)."""
        self.session.send("world.move", x=float(x), z=float(z), vx=float(vx), vz=float(vz),
                          ct=int(time.time() * 1000) & 0xFFFFFFFF, k=self.k)
        self.x, self.z = x, z

    async def leave(self):
        return await self.session.request("world.leave")

    async def close(self):
        if self.session is not None:
            await self.session.close()

    def received(self, m):
        """A message from the session (its C{onEvent}): follow the world, health and combat records."""
        t = m["t"]
        self.events.append(m)
        if t == "world.u":
            health = self.health
            for s in m.get("e", ()):
                self.entities[s[0]] = [s[5], s[7]]
                if len(s) > 12:
                    health[s[0]] = [s[10], s[11], bool(s[12])]
            for eid in m.get("l", ()):
                self.entities.pop(eid, None)
                if eid != self.characterId:
                    health.pop(eid, None)
            blob = m.get("m")
            if blob:
                for eid, x, z, vx, vz, ct in MOVE.iter_unpack(blob):
                    self.entities[eid] = [x, z]
            blob = m.get("c")
            if blob:
                self._combatRecords(blob)
        elif t == "world.correct":
            self.corrections.append(m)
            self.x, self.z, self.k = m["x"], m["z"], m["k"]
        elif t in ("world.zone", "world.reset"):
            self.zone = m["zone"]["id"]
            self.x, self.z, self.k = m["x"], m["z"], m["k"]
            self.entities = {}
            self.health = {}
            self._combatState(m)
        elif t == "world.transfer":
            self._following = Deferred.fromCoroutine(self._follow(m))

    def _combatRecords(self, blob):
        health = self.health
        for rec in R.records(blob):
            ev = CombatEvent(*rec)
            self.combatEvents.append(ev)
            kind = ev.kind
            if kind == R.HEALTH:
                h = health.setdefault(ev.a, [0, 0, False])
                h[0], h[1] = ev.value, ev.b
                h[2] = h[2] and ev.value == 0
            elif kind == R.DEATH:
                h = health.setdefault(ev.b, [0, 0, True])
                h[0], h[2] = 0, True
            elif kind == R.REVIVE:
                h = health.setdefault(ev.b, [0, 0, False])
                h[0], h[2] = ev.value, False

    async def _follow(self, m):
        try:
            await self._switch(m["tcp"])
            await self.enter(ticket=m["ticket"])
        except Exception as e:
            self.log.warn("following the transfer to {zone} failed: {why}", zone=m.get("zone"),
                          why=e)
            d, self.onTransfer = self.onTransfer, Deferred()
            d.errback(e)
            # Whoever waited on onTransfer has its failure; with nobody waiting it is
            # logged above, not left as an unhandled error in a collected Deferred.
            d.addErrback(lambda _: None)
            return
        self.transfers += 1
        d, self.onTransfer = self.onTransfer, Deferred()
        d.callback(self.zone)
