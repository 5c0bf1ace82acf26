"""The C interest space against PySpace: the same random walks, spawns, despawns and combat records give the same views and the same updates."""

import gc
import random
import weakref

import msgpack

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IInterestSpace
from mmoshard.wire.codec import encode
from mmoshard.world.combat.records import HEALTH, RECORD_SIZE, record, records
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


def moveSet(m):
    """The move records packed in C{m} as a set: their order is the engine's."""
    assert len(m) % 20 == 0
    return frozenset(m[i:i + 20] for i in range(0, len(m), 20))


def bySubject(c):
    """
    The combat records packed in C{c} grouped by subject (field C{a}, the
    entity the test emitted them on), each group in the order received:
    different entities' records may come in any order, one entity's may not.
    """
    assert len(c) % RECORD_SIZE == 0
    groups = {}
    for r in records(c):
        groups.setdefault(r[3], []).append(r)
    return frozenset((subject, tuple(rs)) for subject, rs in groups.items())


def normalise(result, ids):
    """
    replicate()'s result keyed by entity id, moves as sets and combat records
    grouped by subject, so what the order between entities may change does not count.
    """
    sends, others, nbytes = result
    plain = {}
    for session, payload in sends:
        body = msgpack.unpackb(payload)
        if "c" not in body:
            assert payload.startswith(MOVES_PREFIX), payload[:16]
            # Payload and head are what movesMessage makes of the same records.
            assert movesMessage(body["m"]) == payload
        else:
            # The bytes wire.codec makes of the same dict, keys in its order.
            ordered = {"t": "world.u"}
            if "m" in body:
                ordered["m"] = body["m"]
            ordered["c"] = body["c"]
            assert encode(ordered) == payload, payload[:32]
            assert body["c"]
        assert set(body) - {"t", "m", "c"} == set() and body["t"] == "world.u"
        plain[session.eid] = (moveSet(body.get("m", b"")), bySubject(body.get("c", b"")))
    rest = {}
    for e, enters, leaves, m, c in others:
        assert type(m) is bytes and type(c) is bytes
        rest[ids(e)] = (sorted(enters), sorted(leaves), moveSet(m), bySubject(c))
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
        """
        The C space and PySpace give the same views and updates (moves and
        combat records) on random walks, spawns, despawns and records.
        """
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

        seq = [0]

        def emit(eid, a, b):
            # One to three records in one call, numbered so order shows; field
            # a is the subject, so the comparison can group them.
            data = b"".join(record(HEALTH, eid, seq[0] + i, tick) for i in range(rng.randint(1, 3)))
            seq[0] += 3
            py.event(a, data)
            c.event(b, data)

        for _ in range(150):
            spawn()
        forced = [p for p in live.values()]
        for tick in range(ticks):
            for eid, (a, b) in list(live.items()):
                # Records on observers and others, sometimes several calls
                # in one tick, before the entity walks, leaves or resets.
                while rng.random() < 0.1:
                    emit(eid, a, b)
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
                    if rng.random() < 0.2:
                        for space, e in ((py, a), (c, b)):
                            self.assertRaises(ValueError, space.event, e, b"x" * 16)
                elif r < 0.53 and a.session is not None:
                    py.reset(a)
                    c.reset(b)
                    forced.append((a, b))
            for _ in range(rng.randint(0, 4)):
                a, b = spawn()
                forced.append((a, b))
                # Records of an entity spawned this tick go with its enter.
                if rng.random() < 0.5:
                    emit(a.id, a, b)
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

    # --- combat records ------------------------------------------------------

    def test_recordsOnlyUpdate(self):
        """
        An observer whose only news is a seen entity's combat records gets an
        update with just C{c}, the records in the order they were emitted.
        """
        c, a, b = self.watching()
        first = record(HEALTH, 2, 100, 90)
        more = record(HEALTH, 2, 100, 80) + record(HEALTH, 2, 100, 70)
        c.event(b, first)
        c.event(b, more)
        c.update(1, 1, [])
        [(session, payload)], others, nbytes = c.replicate()
        self.assertIs(session, a.session)
        self.assertEqual((others, nbytes), ([], 48))
        self.assertEqual(payload, encode({"t": "world.u", "c": first + more}))
        # Consumed: the next tick has nothing to say.
        self.assertEqual(c.replicate(), ([], [], 0))

    def test_recordsWithMoves(self):
        """Moves and records of one tick go in one update, C{m} before C{c}."""
        c, a, b = self.watching()
        b.x = 121.0
        c.move(b)
        rec = record(HEALTH, 2, 100, 90)
        c.event(b, rec)
        c.update(1, 1, [])
        [(_, payload)], _, nbytes = c.replicate()
        self.assertEqual(nbytes, 20 + 16)
        self.assertEqual(payload, encode({"t": "world.u", "m": MOVE.pack(2, 121.0, 100.0, 0, 0, 0),
                                          "c": rec}))

    def test_ownRecordsReachTheObserver(self):
        """An observer gets the records emitted on itself; a non-observer's go only to its watchers."""
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        a = Thing(1, 100.0, 100.0, Session(1))
        lone = Thing(3, 900.0, 900.0, None)
        c.add(a)
        c.add(lone)
        c.update(0, 1, [a])
        self.assertEqual(c.replicate(), ([], [], 0))
        mine = record(HEALTH, 1, 100, 50)
        c.event(a, mine)
        c.event(lone, record(HEALTH, 3, 100, 50))
        [(session, payload)], others, _ = c.replicate()
        self.assertIs(session, a.session)
        self.assertEqual((payload, others), (encode({"t": "world.u", "c": mine}), []))

    def test_recordsOutOfViewNotSent(self):
        """Records of an entity no observer sees, or one that left a view, reach nobody."""
        c, a, b = self.watching()
        far = Thing(3, 500.0, 500.0, None)
        c.add(far)
        c.event(far, record(HEALTH, 3, 100, 50))
        c.update(1, 1, [])
        self.assertEqual(c.replicate(), ([], [], 0))
        # b walks out of view and is hit the same tick: a gets the leave only.
        b.x = 300.0
        c.move(b)
        c.event(b, record(HEALTH, 2, 100, 50))
        c.update(2, 1, [])
        _, [(ob, enters, leaves, m, events)], _ = c.replicate()
        self.assertEqual((ob, enters, leaves, m, events), (a, [], [2], b"", b""))

    def test_othersCarryRecords(self):
        """
        An observer with enters gets its records in the fifth element of its
        C{others} entry: its own and those of what it sees, the one entering
        included.
        """
        c = self.Space(1000.0, 1000.0, 50.0, 5.0)
        a = Thing(1, 100.0, 100.0, Session(1))
        b = Thing(2, 120.0, 100.0, None)
        c.add(a)
        c.add(b)
        mine = record(HEALTH, 1, 100, 60)
        hers = record(HEALTH, 2, 100, 70) + record(HEALTH, 2, 100, 65)
        c.event(a, mine)
        c.event(b, hers)
        c.update(0, 1, [a])
        sends, [(ob, enters, leaves, m, events)], nbytes = c.replicate()
        self.assertEqual((sends, ob, enters, leaves, m, nbytes), ([], a, [2], [], b"", 0))
        self.assertEqual(bySubject(events), bySubject(mine + hers))
        self.assertEqual(len(events), 48)
        # Without records the element is empty bytes.
        a.x = 101.0
        c.move(a)
        c.update(1, 1, [a])
        self.assertEqual(c.replicate(), ([], [], 0))
        c.remove(b)
        self.assertEqual(c.replicate()[1], [(a, [], [2], b"", b"")])

    def test_removedEntityRecordsDropped(self):
        """
        The pending records of an entity taken out are dropped, and the next
        entity added (in the C space, into the same slot) starts with none.
        """
        c, a, b = self.watching()
        c.event(b, record(HEALTH, 2, 100, 10))
        c.remove(b)
        fresh = Thing(3, 110.0, 100.0, None)
        c.add(fresh)
        c.update(1, 1, [a])
        self.assertEqual(c.replicate(), ([], [(a, [3], [2], b"", b"")], 0))
        # Taken out and put back the same tick: what came before is gone.
        c.event(fresh, record(HEALTH, 3, 100, 20))
        c.remove(fresh)
        c.add(fresh)
        after = record(HEALTH, 3, 100, 30)
        c.event(fresh, after)
        c.update(2, 1, [a])
        _, [(_, enters, leaves, _, events)], _ = c.replicate()
        self.assertEqual((enters, leaves, events), ([3], [3], after))

    def test_eventRefused(self):
        """Records of an entity not in the space, or that are not bytes, are refused and change nothing."""
        c, a, b = self.watching()
        for bad in (bytearray(16), memoryview(b"x" * 16), "x" * 16, None):
            with self.assertRaises(TypeError):
                c.event(b, bad)
        outsider = Thing(9, 120.0, 100.0, None)
        with self.assertRaises(ValueError):
            c.event(outsider, b"x" * 16)
        c.remove(b)
        with self.assertRaises(ValueError):
            c.event(b, b"x" * 16)
        c.update(1, 1, [])
        self.assertEqual(c.replicate(), ([], [(a, [], [2], b"", b"")], 0))

    def test_longRecordsUseLongerHeads(self):
        """Records past the bin 8 and bin 16 sizes get the longer msgpack heads, with or without moves."""
        for n in (15, 16, 4095, 4096, 5000):
            c, a, b = self.watching()
            data = b"".join(record(HEALTH, 2, 100, i) for i in range(n))
            c.event(b, data)
            if n % 2:
                c.move(b)
            [(_, payload)], _, nbytes = c.replicate()
            body = {"t": "world.u"}
            if n % 2:
                body["m"] = MOVE.pack(2, 120.0, 100.0, 0, 0, 0)
            body["c"] = data
            self.assertEqual(payload, encode(body))
            self.assertEqual(nbytes, 16 * n + 20 * (n % 2))
            # A burst leaves the space able to carry the next tick's.
            c.event(b, data[:16])
            self.assertEqual(c.replicate()[0][0][1], encode({"t": "world.u", "c": data[:16]}))


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
