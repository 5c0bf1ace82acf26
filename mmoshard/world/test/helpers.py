"""Fakes for world tests: a recording session and a zone factory."""

import os

import msgpack
from twisted.internet.task import Clock
from zope.interface import implementer

from mmoshard.interfaces import ISession
from mmoshard.world.interest import MOVE, loadNative
from mmoshard.world.sim import PLAYER, Entity, Zone
from mmoshard.world.zones import ZoneSpec


@implementer(ISession)
class FakeSession:
    """Records what the world sends."""

    def __init__(self, accountId=1, sessionId="s1"):
        self.accountId = accountId
        self.sessionId = sessionId
        self.claims = None
        self.linkDead = False
        self.ended = False
        self.sent = []
        self.closed = None

    def send(self, type, body, replayable=True):
        self.sent.append((type, body))

    def sendEncoded(self, payload, type):
        body = msgpack.unpackb(payload)
        assert body.pop("t") == type
        self.sent.append((type, body))

    def close(self, code=None, message=None):
        self.closed = (code, message)

    def of(self, type):
        return [body for t, body in self.sent if t == type]

    def clear(self):
        del self.sent[:]


def moves(body):
    """@return: {id: (x, z, vx, vz, t)} from a world.u body's packed moves."""
    out = {}
    for eid, x, z, vx, vz, t in MOVE.iter_unpack(body.get("m", b"")):
        out[eid] = (x, z, vx / 100.0, vz / 100.0, t)
    return out


def requireNative():
    """
    Skip (fail under CI=true, or with MMOSHARD_REQUIRE_NATIVE set, as tox
    sets it) when the C world engine was not built: it is built by
    `pip install -e .` wherever a C compiler is.
    """
    try:
        loadNative()
    except ImportError as e:
        from mmoshard.testing import cannotRun

        if os.environ.get("MMOSHARD_REQUIRE_NATIVE"):
            raise AssertionError(f"the C world engine is not built ({e}) and "
                                 "MMOSHARD_REQUIRE_NATIVE forbids skipping")
        cannotRun(f"the C world engine is not built ({e}); pip install -e . builds it")


def makeZone(engine="python", **kw):
    if engine == "native":
        requireNative()
    kw.setdefault("id", "test")
    kw.setdefault("width", 1000.0)
    kw.setdefault("depth", 1000.0)
    kw.setdefault("aoi_interval", 1)
    clock = Clock()
    clock.advance(1000)
    return Zone(ZoneSpec(**kw), clock, engine), clock


def player(zone, eid, x, z, session=None):
    e = Entity(eid, PLAYER, float(x), 0.0, float(z), name=f"p{eid}", cls="warrior")
    zone.spawn(e, session if session is not None else FakeSession(accountId=eid))
    return e


class HandTicked:
    """
    A zone with combat ticked by hand, for tests: C{self.zone},
    C{self.clock}, C{self.combat} and C{self.tickIndex} set by the subclass.
    """

    def step(self, n=1, dt=0.1):
        """Advance the clock and tick the zone C{n} times, C{dt} seconds each."""
        for _ in range(n):
            self.clock.advance(dt)
            self.tickIndex += 1
            self.zone.tick(self.tickIndex, dt)

    def player(self, eid, x, z):
        """A level 1 warrior player entity C{eid} at (x, z), with combat."""
        p = player(self.zone, eid, x, z)
        self.combat.addPlayer(p, "warrior", 1)
        return p

    def walkTo(self, p, x, z):
        """A player move the server accepted (the tests' shortcut for walking)."""
        p.x = float(x)
        p.z = float(z)
        self.zone.space.move(p)


def missedMistakes(mistakes, valid, parse, error):
    """
    Break a valid document once per mistake and parse it.

    @param mistakes: C{(what, breakIt(doc), fragment)}: the problem message
        must contain C{fragment}.
    @param valid: callable returning a fresh valid document.
    @param error: the exception class C{parse} raises for a bad document.
    @return: one line per mistake not reported as expected (none: all were).
    """
    missed = []
    for what, breakIt, fragment in mistakes:
        doc = valid()
        breakIt(doc)
        try:
            parse(doc)
        except error as e:
            if fragment not in str(e):
                missed.append(f"{what}: {fragment!r} not in {str(e)!r}")
        else:
            missed.append(f"{what}: no error")
    return missed
