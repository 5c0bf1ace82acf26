"""Routing events to characters: local sessions at once, other chat processes through the bus."""

from twisted.logger import Logger

from mmoshard.chat.bus import Bus
from mmoshard.chat.messages import Announce, Deliver


class Router:
    """
    Delivers events to characters wherever they are connected, and handles
    the messages other chat processes send this one.

    What arrives is dispatched by message class through L{inbound}; the
    chat service adds the parts' handlers to it when it wires them.
    L{intercepts} (event type -> callable(user, body)) lets a part update a
    local character's state from an event just before it is delivered.
    """

    log = Logger()

    def __init__(self, store, roster, procId, clock, metrics, ackTimeout):
        self.store = store
        self.roster = roster
        self.users = roster.users
        self.procId = procId
        self.clock = clock
        self.metrics = metrics
        self.bus = Bus(store, procId, clock, metrics, self.receive, ackTimeout)
        self.inbound = {Deliver: self.onDeliver, Announce: self.onAnnounce}
        self.intercepts = {}

    def start(self):
        return self.bus.start()

    def stop(self):
        return self.bus.stop()

    def now(self):
        return self.clock.seconds()

    # -- sending ---------------------------------------------------------------

    def deliverLocal(self, user, type, body, kind, ts, replayable=True):
        user.session.send(type, body, replayable)
        self.metrics.delivered(kind, 1, self.now() - ts if ts is not None else None)

    async def deliver(self, cids, type, body, kind, replayable=True, exclude=None):
        """
        Send an event to characters wherever they are connected: local ones
        at once, the others through their process's inbox.
        """
        ts = self.now()
        remote = []
        intercept = self.intercepts.get(type)
        for cid in cids:
            if cid == exclude:
                continue
            user = self.users.get(cid)
            if user is not None:
                if intercept is not None:
                    intercept(user, body)
                self.deliverLocal(user, type, body, kind, ts, replayable)
            else:
                remote.append(cid)
        if not remote:
            return
        presence = await self.store.presenceOf(remote)
        byProc = {}
        for cid, fields in presence.items():
            proc = fields.get("proc")
            if proc and proc != self.procId:
                byProc.setdefault(proc, []).append(cid)
        for proc, to in byProc.items():
            self.bus.post(proc, Deliver(to, type, body, kind, ts, replayable))

    def routeByProc(self, procs, type, body, kind, ts, exclude=None, onGone=None):
        """
        Deliver to characters whose processes are known: C{procs} is cid ->
        proc.  C{onGone()} is called if one of those processes is gone.
        """
        byProc = {}
        mine = self.procId
        users = self.users
        for cid, proc in procs.items():
            if cid == exclude:
                continue
            if proc == mine:
                user = users.get(cid)
                if user is not None:
                    self.deliverLocal(user, type, body, kind, ts)
            else:
                byProc.setdefault(proc, []).append(cid)
        for proc, to in byProc.items():
            self.bus.post(proc, Deliver(to, type, body, kind, ts), onGone)

    async def routeTo(self, cid, message, proc=None):
        """
        Send C{message} to the process of character C{cid} and wait for its
        acknowledgement.  @return: True when that process delivered it.
        """
        if proc is None:
            fields = (await self.store.presenceOf([cid])).get(cid)
            if not fields:
                return False
            proc = fields["proc"]
        return await self.bus.request(proc, message)

    def send(self, proc, message):
        """@return: a Deferred firing with the receivers of C{message} (0: C{proc} is gone)."""
        return self.bus.send(proc, message)

    async def sendToProcs(self, procs, message):
        """Publish to several processes; @return: the processes that are gone."""
        dead = []
        for proc in procs:
            if not await self.bus.send(proc, message):
                dead.append(proc)
        return dead

    # -- receiving ---------------------------------------------------------------

    def receive(self, message):
        """Handle a message for this process; @return: True when delivered."""
        handler = self.inbound.get(type(message))
        if handler is None:
            return False
        return handler(message)

    def onDeliver(self, message):
        type, body, kind = message.type, message.body, message.kind
        ts, replayable, sender = message.ts, message.replayable, message.sender
        intercept = self.intercepts.get(type)
        delivered = False
        for cid in message.to:
            user = self.users.get(cid)
            if user is None:
                continue
            if sender is not None and (
                sender in user.blocks or user.status == "invisible"
            ):
                continue
            if intercept is not None:
                intercept(user, body)
            self.deliverLocal(user, type, body, kind, ts, replayable)
            delivered = True
        return delivered

    def onAnnounce(self, message):
        for user in list(self.users.values()):
            self.deliverLocal(user, message.type, message.body, "announce", message.ts)
        return True
