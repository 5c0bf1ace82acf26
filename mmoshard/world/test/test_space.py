"""The C interest space against PySpace: the same random walks, spawns and despawns give the same views and the same updates."""

import gc
import random
import weakref

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IInterestSpace
from mmoshard.world.interest import MOVE, MOVES_PREFIX, PySpace, loadNative, movesMessage
from mmoshard.world.test.helpers import requireNative


class Thing:
    """The fields an interest space reads, plus the ones PySpace keeps."""

    def __init__(self, eid, x, z, session):
        self.id = eid
        self.x = x
        self.z = z
        self.vx = 0.0
        self.vz = 0.0
        self.ct = 0
        self.session = session
        self.slot = -1


class Session:
    def __init__(self, eid):
        self.eid = eid


def normalise(result, ids):
    """replicate()'s result keyed by entity id, records as sets, so order does not matter."""
    sends, others, nbytes = result
    plain = {}
    for session, payload in sends:
        assert payload.startswith(MOVES_PREFIX), payload[:16]
        # Payload and head are what movesMessage makes of the same records.
        records = payload[len(payload) - (len(payload) - len(MOVES_PREFIX) - 2) // 20 * 20:]
        assert movesMessage(records) == payload
        plain[session.eid] = frozenset(records[i:i + 20] for i in range(0, len(records), 20))
    rest = {}
    for e, enters, leaves, m in others:
        rest[ids(e)] = (sorted(enters), sorted(leaves), frozenset(m[i:i + 20] for i in range(0, len(m), 20)))
        assert len(m) % 20 == 0
    return plain, rest, nbytes


class SpaceComparisonTests(TestCase):
    """The C space and PySpace driven side by side."""

    def setUp(self):
        requireNative()
        self.Space = loadNative()[0]

    def pair(self, width=600.0, depth=400.0, radius=50.0, hysteresis=5.0):
        return PySpace(width, depth, radius, hysteresis), self.Space(width, depth, radius, hysteresis)

    def test_interface(self):
        """Both spaces provide IInterestSpace and say which is native."""
        for space in self.pair():
            verifyObject(IInterestSpace, space)
        self.assertEqual([s.native for s in self.pair()], [False, True])
    def test_randomWorldsAgree(self):
        """The C space and PySpace give the same views and updates on random walks, spawns and despawns."""
        for seed in range(6):
            self.compare(seed, ticks=120, interval=1 + seed % 3)

    def compare(self, seed, ticks, interval):
        rng = random.Random(seed)
        width, depth = 600.0, 400.0
        py, c = self.pair(width, depth)
        live = {}  # id -> (python entity, C entity)
        nextId = [1]

        def spawn():
            eid = nextId[0]
            nextId[0] += 1
            # Some on cell borders and map edges, where rounding would show.
            x = rng.choice([rng.uniform(0, width), 50.0 * rng.randint(0, 12), 0.0, width])
            z = rng.choice([rng.uniform(0, depth), 50.0 * rng.randint(0, 8), depth])
            observer = rng.random() < 0.8
            pair = tuple(Thing(eid, x, z, Session(eid) if observer else None) for _ in range(2))
            py.add(pair[0])
            c.add(pair[1])
            live[eid] = pair
            return pair

        for _ in range(150):
            spawn()
        forced = [p for p in live.values()]
        for tick in range(ticks):
            for eid, (a, b) in list(live.items()):
                r = rng.random()
                if r < 0.5:
                    # Walks, sometimes along the edge of the view radius.
                    step = rng.choice([rng.uniform(-6, 6), 0.0, 55.0, -55.0])
                    x = min(max(a.x + step, 0.0), width)
                    z = min(max(a.z + rng.uniform(-6, 6), -1.0), depth + 1.0)
                    v = rng.choice([(1.5, -2.25), (400.0, -400.0), (0.0, 0.0)])
                    for e in (a, b):
                        e.x, e.z = x, z
                        e.vx, e.vz = v
                        e.ct = tick * 100 + eid
                    py.move(a)
                    c.move(b)
                elif r < 0.52:
                    py.remove(a)
                    c.remove(b)
                    del live[eid]
                elif r < 0.53 and a.session is not None:
                    py.reset(a)
                    c.reset(b)
                    forced.append((a, b))
            for _ in range(rng.randint(0, 4)):
                forced.append(spawn())
            self.assertEqual(sorted(e.id for e in py.moved()), sorted(e.id for e in c.moved()))
            py.update(tick, interval, [p[0] for p in forced])
            c.update(tick, interval, [p[1] for p in forced])
            forced = []
            self.assertEqual(normalise(py.replicate(), lambda e: e.id),
                             normalise(c.replicate(), lambda e: e.id), f"seed {seed} tick {tick}")
            self.assertEqual(py.pairs(), c.pairs())
            for a, b in rng.sample(list(live.values()), 10):
                self.assertEqual(py.visible(a), c.visible(b))
                self.assertEqual({w.id for w in py.watchers(a)}, {w.id for w in c.watchers(b)})
                self.assertEqual(py.cell(a), c.cell(b))



class SpaceContractMixin:
    """What either implementation must do, beyond what the zone tests show."""

    Space = None

    def watching(self):
        """@return: (space, a, b): observer a has just seen b enter."""
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        a = Thing(1, 100.0, 100.0, Session(1))
        b = Thing(2, 120.0, 100.0, None)
        c.add(a)
        c.add(b)
        c.update(0, 1, [a])
        self.assertEqual(c.replicate()[1][0][1], [2])
        return c, a, b

    def test_recordsAreTheWireFormat(self):
        """
        A moved entity's update is one world.u of the packed wire record, velocities
        clamped and client time masked.
        """
        c, a, b = self.watching()
        b.x, b.vx, b.vz, b.ct = 121.25, 5.0, -1e6, 2 ** 32 + 7
        c.move(b)
        c.update(1, 1, [])
        [(session, payload)], others, nbytes = c.replicate()
        self.assertIs(session, a.session)
        self.assertEqual((others, nbytes), ([], 20))
        # Velocities clamp to int16 cm/s; the client time is a uint32.
        self.assertEqual(payload, movesMessage(MOVE.pack(2, 121.25, 100.0, 500, -32768, 7)))

    def test_longUpdatesUseLongerHeads(self):
        """Updates past the bin 8 and bin 16 sizes get the longer msgpack heads."""
        for n in (12, 13, 3276, 3277):
            c = self.Space(1000.0, 1000.0, 500.0, 5.0)
            watcher = Thing(0, 500.0, 500.0, Session(0))
            c.add(watcher)
            things = [Thing(i + 1, 500.0 + i * 1e-3, 500.0, None) for i in range(n)]
            for t in things:
                c.add(t)
            c.update(0, 1, [watcher])
            c.replicate()
            for t in things:
                c.move(t)
            [(_, payload)], _, nbytes = c.replicate()
            self.assertEqual(nbytes, 20 * n)
            self.assertEqual(payload, movesMessage(payload[-20 * n:]))

    def test_removeThenAddAnother(self):
        """
        A removed entity leaves no trace; removing twice is harmless; adding twice or
        moving a removed one is refused.
        """
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        first = Thing(1, 10.0, 10.0, Session(1))
        c.add(first)
        c.remove(first)
        self.assertEqual(first.slot, -1)
        c.remove(first)  # twice: nothing happens
        second = Thing(2, 10.0, 10.0, None)
        c.add(second)
        with self.assertRaises(ValueError):
            c.add(second)
        with self.assertRaises(ValueError):
            c.move(first)
        self.assertEqual((c.visible(first), c.watchers(first), c.cell(first)), (set(), set(), -1))

    def test_badEntitiesRefused(self):
        """Out-of-range ids, non-numeric positions, non-entities and bad arguments are refused whole."""
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        with self.assertRaises(OverflowError):
            c.add(Thing(2 ** 32, 1.0, 1.0, None))
        with self.assertRaises(TypeError):
            c.add(Thing(1, "x", 1.0, None))
        # Refused whole: not half in the space.
        self.assertEqual(c.cell(Thing(1, 1.0, 1.0, None)), -1)
        with self.assertRaises(AttributeError):
            c.add(object())
        with self.assertRaises(ValueError):
            c.update(0, 0)
        with self.assertRaises(ValueError):
            self.Space(100.0, 100.0, 0.0, 5.0)
        self.assertEqual(c.pairs(), 0)

    def test_entitiesFreedWithTheSpace(self):
        """A reference cycle through the space does not keep its entities alive."""
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        e = Thing(1, 10.0, 10.0, Session(1))
        e.space = c  # a cycle through the space: the collector must break it
        c.add(e)
        ref = weakref.ref(e)
        del c, e
        gc.collect()
        self.assertIsNone(ref())

    def test_snapshotAtMove(self):
        """An update carries the entity's fields as they were at move(), not later changes."""
        c, a, b = self.watching()
        b.x, b.vx = 121.0, 2.0
        c.move(b)
        # Changed after move() without another one: not part of the record.
        b.x, b.vx = 130.0, 7.0
        c.update(1, 1, [])
        [(_, payload)], _, _ = c.replicate()
        self.assertEqual(payload, movesMessage(MOVE.pack(2, 121.0, 100.0, 200, 0, 0)))


class PythonSpaceContractTests(SpaceContractMixin, TestCase):
    Space = PySpace


class NativeSpaceContractTests(SpaceContractMixin, TestCase):
    def setUp(self):
        requireNative()
        self.Space = loadNative()[0]

    def test_slotsAreReusedAfterRemove(self):
        """The C space reuses a removed entity's slot for the next one added."""
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        first = Thing(1, 10.0, 10.0, Session(1))
        c.add(first)
        slot = first.slot
        c.remove(first)
        second = Thing(2, 10.0, 10.0, None)
        c.add(second)
        self.assertEqual(second.slot, slot)
