"""Area of interest and replication on a uniform grid: visible sets with enter/leave hysteresis, and the per-tick updates."""

import math
import struct
from bisect import bisect_left, bisect_right

from twisted.logger import Logger
from zope.interface import classImplements, implementer

from mmoshard.interfaces import IInterestSpace
from mmoshard.wire.codec import encode

_log = Logger()

# One moved entity in a world.u update: id, x, z (float32 metres), vx, vz
# (int16 cm/s) and the client time (uint32 ms) of the input that moved it.
MOVE = struct.Struct("<IffhhI")

# msgpack of {"t": "world.u", "m": <bin>} up to the bin header: the common
# update (moves only) is built by concatenation instead of a dict encode.
MOVES_PREFIX = b"\x82\xa1t\xa7world.u\xa1m"

# Its head for every bin 8 length: the common update is one concatenation.
_MOVES_HEADS = [MOVES_PREFIX + b"\xc4" + bytes([n]) for n in range(0x100)]


def movesMessage(m):
    """@return: the msgpack bytes of C{{"t": "world.u", "m": m}}."""
    n = len(m)
    if n < 0x100:
        return _MOVES_HEADS[n] + m
    if n < 0x10000:
        return MOVES_PREFIX + b"\xc5" + n.to_bytes(2, "big") + m
    return MOVES_PREFIX + b"\xc6" + n.to_bytes(4, "big") + m


def packMove(e):
    """
    @return: the move record of entity C{e}: velocities clamped to int16
        cm/s, the client time masked to uint32.
    """
    vx = int(e.vx * 100.0)
    vz = int(e.vz * 100.0)
    if not -0x8000 <= vx <= 0x7FFF:
        vx = 0x7FFF if vx > 0 else -0x8000
    if not -0x8000 <= vz <= 0x7FFF:
        vz = 0x7FFF if vz > 0 else -0x8000
    return MOVE.pack(e.id, e.x, e.z, vx, vz, e.ct & 0xFFFFFFFF)


class Grid:
    """
    Cells of side C{radius}, so everything an observer can see lies in its
    cell's 3x3 neighbourhood (precomputed per cell).
    """

    def __init__(self, width, depth, radius):
        self.size = float(radius)
        self.cols = int(math.floor(width / self.size)) + 1
        self.rows = int(math.floor(depth / self.size)) + 1
        self.neighbours = [self._around(c) for c in range(self.cols * self.rows)]

    def _around(self, cell):
        cols, rows = self.cols, self.rows
        cx, cz = cell % cols, cell // cols
        return tuple(
            j * cols + i
            for j in range(max(0, cz - 1), min(rows, cz + 2))
            for i in range(max(0, cx - 1), min(cols, cx + 2))
        )

    def cellOf(self, x, z):
        s = self.size
        i = int(x // s)
        j = int(z // s)
        if i < 0:
            i = 0
        elif i >= self.cols:
            i = self.cols - 1
        if j < 0:
            j = 0
        elif j >= self.rows:
            j = self.rows - 1
        return j * self.cols + i


@implementer(IInterestSpace)
class PySpace:
    """
    The pure-Python interest space, kept on the entities themselves
    (C{cell}, C{visible}, C{watchers}, C{enters}, C{leaves}).

    An entity enters an observer's view within C{radius} and leaves beyond
    C{radius + hysteresis}, so an entity walking along the edge does not
    flicker in and out.  Observers are recomputed every C{interval} ticks,
    staggered by cell so the work is spread evenly and the observers of one
    cell share the candidate list built for it; between recomputes the
    moves of what they see are still sent every tick.
    """

    native = False

    def __init__(self, width, depth, radius, hysteresis):
        if not (radius > 0 and width >= 0 and depth >= 0 and hysteresis >= 0):
            raise ValueError("radius must be > 0, sizes and hysteresis >= 0")
        self.radius = float(radius)
        self.outer = float(radius) + float(hysteresis)
        self.grid = Grid(width, depth, radius)
        self.cells = [set() for _ in range(len(self.grid.neighbours))]
        self.entities = {}
        self.observers = {}  # id -> entity with a session
        # id -> move record of the entities moved this tick, taken at move()
        # as the C space does; in the order they first moved.
        self._recs = {}
        # id -> the combat records emitted on the entity this tick, in order.
        self._events = {}

    # --- membership ---------------------------------------------------------

    def add(self, e):
        if self.entities.get(e.id) is e:
            raise ValueError("entity is already in this space")
        if not 0 <= e.id <= 0xFFFFFFFF:
            raise OverflowError("entity id must fit in uint32")
        cell = self.grid.cellOf(e.x, e.z)  # first: a bad position changes nothing
        e.slot = 0
        e.visible = set()
        e.watchers = set()
        e.enters = e.leaves = None
        self.entities[e.id] = e
        if e.session is not None:
            self.observers[e.id] = e
        e.cell = cell
        self.cells[cell].add(e)

    def remove(self, e):
        if self.entities.pop(e.id, None) is None:
            return
        self.observers.pop(e.id, None)
        if e.cell >= 0:
            self.cells[e.cell].discard(e)
        e.cell = -1
        e.slot = -1
        self._recs.pop(e.id, None)
        self._events.pop(e.id, None)
        eid = e.id
        for w in e.watchers:
            w.visible.discard(eid)
            if w.leaves is None:
                w.leaves = [eid]
            else:
                w.leaves.append(eid)
            if w.enters:
                w.enters.discard(eid)
        e.watchers = set()
        self.reset(e)

    def reset(self, e):
        entities = self.entities
        for vid in e.visible:
            other = entities.get(vid)
            if other is not None:
                other.watchers.discard(e)
        e.visible = set()
        e.enters = e.leaves = None

    # --- movement -----------------------------------------------------------

    def move(self, e):
        if self.entities.get(e.id) is not e:
            raise ValueError("entity is not in this space")
        self._recs[e.id] = packMove(e)
        grid = self.grid
        s = grid.size
        i = int(e.x // s)
        j = int(e.z // s)
        if 0 <= i < grid.cols and 0 <= j < grid.rows:
            cell = j * grid.cols + i
        else:
            cell = grid.cellOf(e.x, e.z)
        if cell != e.cell:
            self.cells[e.cell].discard(e)
            self.cells[cell].add(e)
            e.cell = cell

    def event(self, e, record):
        if self.entities.get(e.id) is not e:
            raise ValueError("entity is not in this space")
        if type(record) is not bytes:
            raise TypeError("a record is bytes")
        evs = self._events.get(e.id)
        if evs is None:
            self._events[e.id] = [record]
        else:
            evs.append(record)

    def moved(self):
        entities = self.entities
        return [entities[i] for i in self._recs]

    # --- interest -------------------------------------------------------------

    def update(self, tick, interval, forced=()):
        if interval < 1:
            raise ValueError("interval must be >= 1")
        r2 = self.radius * self.radius
        o2 = self.outer * self.outer
        cells = self.cells
        neighbours = self.grid.neighbours
        entities = self.entities
        phase = tick % interval
        # Per cell, once per tick: (x, z, id) of what is inside.  Per observer
        # cell, the concatenation over its neighbourhood, shared by every
        # observer in that cell and sorted by x so each observer only tests the band
        # [x - radius, x + radius]: a third fewer distance checks.
        radius = self.radius
        ids = {}
        rows = {}
        due = [ob for c in range(phase, len(cells), interval) for ob in cells[c]
               if ob.session is not None]
        if forced:
            due.extend(ob for ob in forced if ob.session is not None and ob.cell >= 0)
        for ob in due:
            cell = ob.cell
            row = rows.get(cell)
            if row is None:
                cand = []
                for c in neighbours[cell]:
                    cid = ids.get(c)
                    if cid is None:
                        cid = ids[c] = [(o.x, o.z, o.id) for o in cells[c]]
                    cand += cid
                cand.sort()
                row = rows[cell] = (cand, [c[0] for c in cand])
            cand, xs = row
            ox = ob.x
            oz = ob.z
            band = cand[bisect_left(xs, ox - radius):bisect_right(xs, ox + radius)]
            inner = {i for x, z, i in band if (x - ox) * (x - ox) + (z - oz) * (z - oz) <= r2}
            inner.discard(ob.id)
            old = ob.visible
            left = old - inner
            if left:
                # Kept though outside the radius: within radius + hysteresis.
                for vid in tuple(left):
                    v = entities.get(vid)
                    if v is not None and (v.x - ox) ** 2 + (v.z - oz) ** 2 <= o2:
                        inner.add(vid)
                        left.discard(vid)
            entered = inner - old
            if not entered and not left:
                continue
            ob.visible = inner
            if entered:
                for vid in entered:
                    entities[vid].watchers.add(ob)
                if ob.enters is None:
                    ob.enters = entered
                else:
                    ob.enters |= entered
            if left:
                for vid in left:
                    v = entities.get(vid)
                    if v is not None:
                        v.watchers.discard(ob)
                if ob.enters:
                    ob.enters -= left
                if ob.leaves is None:
                    ob.leaves = list(left)
                else:
                    ob.leaves.extend(left)

    # --- replication ------------------------------------------------------------

    def replicate(self):
        """
        Each moved entity was packed at its move(); an observer's moves are
        one set intersection and one join, so unchanged entities cost nothing.
        Its combat records are those of what it sees and its own, each
        entity's in the order emitted.
        """
        recs = self._recs
        self._recs = {}
        movedIds = set(recs)
        getRec = recs.__getitem__
        join = b"".join
        heads = _MOVES_HEADS
        sends = []
        queue = sends.append
        others = []
        nbytes = 0
        evs = self._events
        if evs:
            self._events = {}
            chunks = {i: join(v) for i, v in evs.items()}
            evIds = set(chunks)
            getChunk = chunks.__getitem__
        else:
            chunks = None
        for ob in self.observers.values():
            enters = ob.enters
            leaves = ob.leaves
            c = b""
            if chunks is not None:
                cids = ob.visible & evIds
                if ob.id in chunks:
                    cids.add(ob.id)
                if cids:
                    c = join(map(getChunk, cids))
            if not enters and not leaves:
                # The common case: only moves of what it already sees.
                ids = ob.visible & movedIds
                if c:
                    body = {"t": "world.u"}
                    if ids:
                        body["m"] = m = join(map(getRec, ids))
                        nbytes += len(m)
                    body["c"] = c
                    nbytes += len(c)
                    queue((ob.session, encode(body)))
                elif ids:
                    m = join(map(getRec, ids))
                    n = len(m)
                    # movesMessage, its common case inlined: once per player per tick.
                    queue((ob.session, heads[n] + m if n < 0x100 else movesMessage(m)))
                    nbytes += n
                continue
            ob.enters = ob.leaves = None
            ids = ob.visible & movedIds
            if enters:
                ids -= enters
            others.append((ob, list(enters or ()), leaves or [],
                           join(map(getRec, ids)) if ids else b"", c))
        return sends, others, nbytes

    # --- reading --------------------------------------------------------------

    def visible(self, e):
        return set(e.visible)

    def watchers(self, e):
        return set(e.watchers)

    def cell(self, e):
        return e.cell if self.entities.get(e.id) is e else -1

    def pairs(self):
        return sum(len(ob.visible) for ob in self.observers.values())


def pickMove(message):
    """@return: the queued form of a world.move message: C{(x, z, vx, vz, ct, k)}."""
    get = message.get
    return (get("x"), get("z"), get("vx", 0.0), get("vz", 0.0), get("ct", 0), get("k", 0))


def loadNative():
    """
    @return: C{(Space, applyMoves, pickMove)}: the C engine,
        L{mmoshard.world._space} and L{mmoshard.world._moves}.
    @raise ImportError: either was not built here.
    """
    from mmoshard.world._moves import applyMoves, pickMove as nativePick
    from mmoshard.world._space import Space

    return Space, applyMoves, nativePick


def nativeAvailable():
    """True when the C engine imports."""
    try:
        loadNative()
    except ImportError:
        return False
    return True


def makeEngine(spec, engine="auto"):
    """
    The interest space and movement loop of zone C{spec}: the C ones when
    C{engine} is C{"native"}, or C{"auto"} and they were built; else
    L{PySpace} and the zone's Python loop.

    @return: C{(space, applyMoves, pickMove)}, C{applyMoves} None for the
        Python loop.
    @raise ImportError: C{engine} is C{"native"} and the C engine is missing.
    """
    args = (spec.width, spec.depth, spec.aoi_radius, spec.aoi_hysteresis)
    if engine != "python":
        try:
            Space, applyMoves, nativePick = loadNative()
        except ImportError as e:
            if engine == "native":
                raise
            _log.warn("zone {zone}: the C world engine is not available ({why}); "
                      "running the Python one", zone=spec.id, why=e)
        else:
            return Space(*args), applyMoves, nativePick
    return PySpace(*args), None, pickMove


try:
    from mmoshard.world._space import Space as _NativeSpace
except ImportError:
    pass
else:
    classImplements(_NativeSpace, IInterestSpace)
