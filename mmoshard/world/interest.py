"""Area of interest on a uniform grid: per-observer visible sets with enter/leave hysteresis."""

import math
from bisect import bisect_left, bisect_right


class InterestGrid:
    """
    Cells of side C{radius} hold the entities inside them, so everything an
    observer can see lies in its cell's 3x3 neighbourhood (precomputed per
    cell).  An entity enters an observer's view within C{radius} and leaves
    beyond C{radius + hysteresis}, so an entity walking along the edge does
    not flicker in and out.

    Observers are recomputed every C{interval} ticks, staggered by cell so the
    work is spread evenly and the observers of one cell share the candidate
    list built for it; between recomputes the moves of what they see are
    still sent every tick.  An observer that spawned or teleported is
    recomputed on the next tick.
    """

    def __init__(self, width, depth, radius, hysteresis):
        self.radius = float(radius)
        self.outer = float(radius) + float(hysteresis)
        self.size = self.radius
        self.cols = int(math.floor(width / self.size)) + 1
        self.rows = int(math.floor(depth / self.size)) + 1
        self.cells = [set() for _ in range(self.cols * self.rows)]
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

    def insert(self, e):
        e.cell = self.cellOf(e.x, e.z)
        self.cells[e.cell].add(e)

    def remove(self, e):
        if e.cell >= 0:
            self.cells[e.cell].discard(e)
        e.cell = -1

    def move(self, e):
        s = self.size
        i = int(e.x // s)
        j = int(e.z // s)
        if 0 <= i < self.cols and 0 <= j < self.rows:
            cell = j * self.cols + i
        else:
            cell = self.cellOf(e.x, e.z)
        if cell != e.cell:
            self.cells[e.cell].discard(e)
            self.cells[cell].add(e)
            e.cell = cell

    def update(self, entities, tick, interval, forced=()):
        """
        Recompute the visible sets of the observers due this tick (those in
        this tick's cells, and C{forced}: just spawned or teleported), filling
        their C{enters} (set of ids) and C{leaves} (list of ids).
        """
        r2 = self.radius * self.radius
        o2 = self.outer * self.outer
        cells = self.cells
        neighbours = self.neighbours
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
            ob.aoiDue = False
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
