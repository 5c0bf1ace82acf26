"""A Python world client over the session client: enters, moves, tracks what it sees, follows redirects and zone transfers."""

import time

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.wire.client import RequestError, SessionClient
from mmoshard.world.interest import MOVE


class WorldClient:
    """
    One character in the world.  C{enter()} connects and enters, following a
    redirect to the process hosting the character's zone and retrying while
    the character is busy elsewhere.  A C{world.transfer} (a portal to a zone
    on another process) is followed automatically: the client connects to
    the new process and enters there with the ticket; C{transfers} counts
    them and C{onTransfer} (a Deferred replaced each time) fires after.
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
        self._following = None

    async def _connect(self, address):
        session = SessionClient(self.reactor, address, self.token, onEvent=self._event,
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
        if old is not None:
            try:
                await old.close()
            except Exception:
                old.drop()

    def _entered(self, reply):
        self.zone = reply["zone"]["id"]
        self.x, self.y, self.z, self.k = reply["x"], reply["y"], reply["z"], reply["k"]

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

    def _event(self, m):
        t = m["t"]
        self.events.append(m)
        if t == "world.u":
            for s in m.get("e", ()):
                self.entities[s[0]] = [s[5], s[7]]
            for eid in m.get("l", ()):
                self.entities.pop(eid, None)
            blob = m.get("m")
            if blob:
                for eid, x, z, vx, vz, ct in MOVE.iter_unpack(blob):
                    self.entities[eid] = [x, z]
        elif t == "world.correct":
            self.corrections.append(m)
            self.x, self.z, self.k = m["x"], m["z"], m["k"]
        elif t in ("world.zone", "world.reset"):
            self.zone = m["zone"]["id"]
            self.x, self.z, self.k = m["x"], m["z"], m["k"]
            self.entities = {}
        elif t == "world.transfer":
            self._following = Deferred.fromCoroutine(self._follow(m))

    async def _follow(self, m):
        try:
            await self._switch(m["tcp"])
            await self.enter(ticket=m["ticket"])
        except Exception as e:
            self.log.warn("following the transfer to {zone} failed: {why}", zone=m.get("zone"),
                          why=e)
            d, self.onTransfer = self.onTransfer, Deferred()
            d.errback(e)
            return
        self.transfers += 1
        d, self.onTransfer = self.onTransfer, Deferred()
        d.callback(self.zone)
