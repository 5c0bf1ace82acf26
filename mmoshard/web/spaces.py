"""The live view of every world node's spaces for the operator console: the question asked over the volatile store, the answers, and the collector that waits for them."""

import secrets

import attrs
import msgpack
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

# Every world node listens here; an answer goes to the asker's own channel.
ASK_CHANNEL = "admin:spaces:ask"
# Seconds the collector waits for the world nodes' answers.
ANSWER_TIMEOUT = 0.6


def replyChannel(nodeId):
    """@return: the channel the answers to node C{nodeId}'s questions come back on."""
    return f"admin:spaces:reply:{nodeId}"


@attrs.frozen
class SpacesAsk:
    """
    A console's question to every world node: a summary of each space it
    hosts and, when C{zone} names one of them, its map and entities.
    """

    ask_id: str
    reply: str  # the channel to answer on
    zone: str | None = None

    def encode(self):
        return msgpack.packb([self.ask_id, self.reply, self.zone])

    @classmethod
    def decode(cls, raw):
        askId, reply, zone = msgpack.unpackb(raw, raw=False)
        if not isinstance(askId, str) or not isinstance(reply, str) or not (
                zone is None or isinstance(zone, str)):
            raise ValueError("malformed spaces question")
        return cls(askId, reply, zone)


@attrs.frozen
class SpaceSummary:
    """One space (an open-world zone or an instance's copy) of a world node."""

    zone: str
    label: str  # the zone, or an instance's template
    instance: int | None
    players: int
    npcs: int
    tick_ms: float  # mean tick time over the last seconds (of the label's spaces)
    tick_max_ms: float


@attrs.frozen
class SpaceEntity:
    """One entity of a space as the console's map draws it."""

    id: int
    kind: str  # "p" player, "n" NPC
    name: str
    x: float
    z: float
    level: int
    hp: int | None
    hp_max: int | None
    dead: bool
    account: int | None = None  # a player's account (the console's ban and kick)


@attrs.frozen
class SpaceDetail:
    """A space's map and every entity in it, at one tick."""

    zone: str
    tick: int
    width: float
    depth: float
    blocked: tuple  # of [x0, z0, x1, z1]
    portals: tuple  # of [x0, z0, x1, z1, where it leads]
    entities: tuple  # of SpaceEntity


@attrs.frozen
class SpacesAnswer:
    """What one world node answers a L{SpacesAsk}."""

    ask_id: str
    node_id: str
    spaces: tuple  # of SpaceSummary
    detail: SpaceDetail | None = None

    def encode(self):
        detail = self.detail
        if detail is not None:
            detail = [detail.zone, detail.tick, detail.width, detail.depth,
                      [list(b) for b in detail.blocked], [list(p) for p in detail.portals],
                      [attrs.astuple(e) for e in detail.entities]]
        return msgpack.packb([self.ask_id, self.node_id,
                              [attrs.astuple(s) for s in self.spaces], detail])

    @classmethod
    def decode(cls, raw):
        askId, nodeId, spaces, detail = msgpack.unpackb(raw, raw=False)
        if detail is not None:
            zone, tick, width, depth, blocked, portals, entities = detail
            detail = SpaceDetail(zone, tick, width, depth, tuple(blocked), tuple(portals),
                                 tuple(SpaceEntity(*e) for e in entities))
        return cls(askId, nodeId, tuple(SpaceSummary(*s) for s in spaces), detail)

    def toJSON(self):
        out = {"node_id": self.node_id, "spaces": [attrs.asdict(s) for s in self.spaces]}
        if self.detail is not None:
            out["detail"] = attrs.asdict(self.detail)
        return out


class SpaceViews:
    """
    Asks every world node of the directory for its spaces over the volatile
    store and gathers the answers: a console on any node sees the whole
    shard.  Its reply channel is subscribed at the first question and kept
    until L{stop}.
    """

    log = Logger()

    def __init__(self, volatile, clock, nodeId, directory, timeout=ANSWER_TIMEOUT):
        self.volatile = volatile
        self.clock = clock
        self.nodeId = nodeId
        self.directory = directory
        self.timeout = timeout
        self.pending = {}  # ask id -> (Deferred, answers, the nodes still to answer)
        self._subscription = None
        self._waiters = []  # questions waiting for the subscription

    async def _subscribe(self):
        """Subscribe to the reply channel once, however many questions wait for it."""
        if self._subscription is not None:
            return
        waiter = Deferred()
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            error = None
            try:
                self._subscription = await self.volatile.subscribe(
                    replyChannel(self.nodeId), self._received)
            except Exception as e:
                error = e
            waiters, self._waiters = self._waiters, []
            for w in waiters:
                if error is None:
                    w.callback(None)
                else:
                    w.errback(error)
        await waiter

    async def ask(self, zone=None):
        """
        @param zone: the space whose map and entities are wanted, or None.
        @return: the L{SpacesAnswer}s of the world nodes that answered
            within the timeout, by node id, and the ids of those that did
            not.
        """
        entries = await self.directory.list()
        expected = {e.node_id for e in entries if "world" in e.roles}
        if not expected:
            return [], []
        await self._subscribe()
        askId = secrets.token_hex(8)
        done = Deferred()
        answers = []
        self.pending[askId] = (done, answers, set(expected))
        timer = self.clock.callLater(self.timeout, self._finish, askId)
        try:
            await self.volatile.publish(
                ASK_CHANNEL, SpacesAsk(askId, replyChannel(self.nodeId), zone).encode())
            await done
        finally:
            if timer.active():
                timer.cancel()
            self.pending.pop(askId, None)
        answered = {a.node_id for a in answers}
        answers.sort(key=lambda a: a.node_id)
        return answers, sorted(expected - answered)

    def _finish(self, askId):
        entry = self.pending.get(askId)
        if entry is not None and not entry[0].called:
            entry[0].callback(None)

    def _received(self, channel, message):
        try:
            answer = SpacesAnswer.decode(message)
        except Exception:
            self.log.warn("ignoring a malformed spaces answer on {channel}", channel=channel)
            return
        entry = self.pending.get(answer.ask_id)
        if entry is None:
            return  # too late: that question was answered without it
        done, answers, waiting = entry
        answers.append(answer)
        waiting.discard(answer.node_id)
        if not waiting:
            self._finish(answer.ask_id)

    def stop(self):
        """Unsubscribe; @return: a Deferred."""
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return succeed(None)
        return subscription.unsubscribe()


__all__ = ["SpacesAsk", "SpacesAnswer", "SpaceSummary", "SpaceEntity", "SpaceDetail",
           "SpaceViews", "ASK_CHANNEL", "replyChannel"]
