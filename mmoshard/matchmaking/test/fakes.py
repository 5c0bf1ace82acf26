"""Test doubles for the matchmaking service: the locator, parties, instances and ratings it uses, and a session that records what it is sent."""

import itertools
import types

import attrs
from twisted.internet.defer import fail, succeed
from zope.interface import implementer

from mmoshard.testing import DictParties
from mmoshard.interfaces import IInstances, ILocator, IMatchResults, IMessageRouter, ISession
from mmoshard.store.errors import VolatileUnavailable

_ids = itertools.count(1)


@implementer(ISession)
class FakeSession:
    """A session that records what it is sent."""

    def __init__(self, accountId):
        self.sessionId = f"s{next(_ids)}"
        self.accountId = accountId
        self.claims = types.SimpleNamespace(account_id=accountId, has=lambda flag: False)
        self.linkDead = False
        self.ended = False
        self.sent = []

    def send(self, type, body, replayable=True):
        self.sent.append(dict(body, t=type))

    def sendEncoded(self, payload, type):
        raise AssertionError("matchmaking sends no pre-encoded messages")

    def close(self, code=None, message=None):
        self.ended = True

    def events(self, type):
        return [m for m in self.sent if m["t"] == type]


@implementer(IMessageRouter)
class FakeRouter:
    """An L{IMessageRouter} keeping what a role registers."""

    def __init__(self):
        self.handlers = {}
        self.listeners = []

    def addHandlers(self, namespace, handlers):
        assert all(t.startswith(namespace + ".") for t in handlers)
        self.handlers.update(handlers)

    def addListener(self, listener):
        self.listeners.append(listener)


@attrs.frozen
class Location:
    """What L{FakeLocator.where} answers: the fields of L{mmoshard.locator.Location}."""

    character_id: int
    sessions: tuple  # (kind, node, session id)
    node: str | None = None
    zone: str | None = None
    instance_id: int | None = None


class FakeLocator:
    """What every node of a test shares behind its L{ILocator} (L{forNode}): a dict, no TTLs."""

    def __init__(self):
        self.bound = {}  # cid -> {kind: (node, sid)}
        self.places = {}  # cid -> (node, zone, instance id)
        self.down = False  # where() fails as a store that does not answer

    def forNode(self, nodeId):
        return _NodeLocator(self, nodeId)

    def where(self, characterId):
        if self.down:
            return fail(VolatileUnavailable("locator store down (test)"))
        kinds = self.bound.get(characterId)
        place = self.places.get(characterId)
        if not kinds and place is None:
            return succeed(None)
        sessions = tuple((k, n, s) for k, (n, s) in sorted((kinds or {}).items()))
        return succeed(Location(characterId, sessions, *(place or ())))


@implementer(ILocator)
class _NodeLocator:
    """One node's view of a L{FakeLocator}: binds on that node."""

    def __init__(self, shared, nodeId):
        self.shared = shared
        self.nodeId = nodeId

    def bind(self, characterId, kind, sessionId):
        self.shared.bound.setdefault(characterId, {})[kind] = (self.nodeId, sessionId)
        return succeed(None)

    def unbind(self, characterId, kind, sessionId):
        kinds = self.shared.bound.get(characterId, {})
        if kinds.get(kind) == (self.nodeId, sessionId):
            del kinds[kind]
        return succeed(None)

    def place(self, characterId, zone, instanceId=None):
        self.shared.places[characterId] = (self.nodeId, zone, instanceId)
        return succeed(None)

    def unplace(self, characterId):
        self.shared.places.pop(characterId, None)
        return succeed(None)

    def where(self, characterId):
        return self.shared.where(characterId)


# L{IParties} over a dict: party id -> members, leader first.
FakeParties = DictParties


@attrs.frozen
class Placement:
    """The fields of L{mmoshard.world.instances.data.Placement} (a world module)."""

    instance_id: int
    template: str
    zone: str
    node: str
    endpoints: dict
    tickets: dict


class InstanceFailure(Exception):
    """What the fake's create fails with when told to: an InstanceError's code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code
        self.retry_after = None


@implementer(IInstances)
class FakeInstances:
    """L{IInstances} that records creates and closes; C{failing} codes make the next creates fail."""

    def __init__(self):
        self.created = []  # (template, roster, teams, matchId)
        self.closed = []
        self.failing = []

    def create(self, template, roster, partyId=None, teams=None, matchId=None):
        if self.failing:
            return fail(InstanceFailure(self.failing.pop(0)))
        self.created.append((template, list(roster), teams, matchId))
        iid = len(self.created)
        return succeed(Placement(iid, template, f"{template}/{iid}", "world-1",
                                 {"tcp": "127.0.0.1:7000"},
                                 {cid: f"adm-{iid}-{cid}" for cid in roster}))

    def close(self, instanceId):
        self.closed.append(instanceId)
        return succeed(None)

    def list(self):
        return succeed([])

    def locate(self, instanceId):
        return succeed(None)

    def reopen(self, instanceId):
        return succeed(None)

    def admit(self, ticket, characterId):
        return succeed(0)


@attrs.frozen
class Rating:
    rating: float
    rd: float = 350.0
    volatility: float = 0.06
    games: int = 0


@implementer(IMatchResults)
class FakeResults:
    """L{IMatchResults} with fixed ratings."""

    def __init__(self, ratings=None):
        self.fixed = dict(ratings or {})

    def report(self, matchId, queue, teams, winner):
        return succeed({})

    def ratings(self, queue, characterIds):
        return succeed({cid: Rating(self.fixed.get(cid, 1500.0)) for cid in characterIds})
