"""Where NPCs come from: their entity ids, their placement around a pack's centre, and the queue of corpses waiting to respawn."""

import heapq
import itertools
import math

# NPC entity ids start here (player entity ids are character ids, below it)
# and are unique in the process: every zone's Npcs draws from this one
# counter, so an id never names two entities on one node.
NPC_ID_BASE = 2 ** 31
_npcIds = itertools.count(NPC_ID_BASE)

# Placement tries around a pack's centre before falling back to the centre.
PLACE_TRIES = 20


def nextNpcId():
    """@return: a fresh NPC entity id (2**31 up, unique in the process)."""
    return next(_npcIds)


def spawnId(zoneId, packIndex, memberIndex):
    """@return: the stable spawn id of a pack member: C{"<zone>:<pack>:<member>"} (reward keys use it)."""
    return f"{zoneId}:{packIndex}:{memberIndex}"


def place(zone, pack, rng):
    """@return: a point in C{zone} within C{pack.spread} of its centre, off blocked tiles (seeded), else the centre."""
    spec = zone.spec
    terrain = zone.terrain
    cx, cz = pack.at
    for _ in range(PLACE_TRIES):
        r = pack.spread * math.sqrt(rng.random())
        a = rng.random() * 2.0 * math.pi
        x = cx + r * math.cos(a)
        z = cz + r * math.sin(a)
        if spec.inBounds(x, z) and not terrain.isBlocked(x, z):
            return x, z
    return float(cx), float(cz)


class Respawns:
    """
    The dead NPCs ordered by when they respawn: waiting corpses cost
    nothing per tick.  An entry is for one death (the brain's C{deaths}
    then), so a stale one (revived otherwise, despawned) is skipped.
    """

    __slots__ = ("heap", "seq")

    def __init__(self):
        self.heap = []
        self.seq = itertools.count()  # ties in time keep their order

    def __len__(self):
        return len(self.heap)

    def push(self, brain, when):
        heapq.heappush(self.heap, (when, next(self.seq), brain, brain.deaths))

    def due(self, now, dead):
        """@return: the brains due by C{now} still in state C{dead} of the death they were queued for."""
        heap = self.heap
        out = []
        while heap and heap[0][0] <= now:
            _, _, brain, deaths = heapq.heappop(heap)
            if brain.state is dead and brain.deaths == deaths:
                out.append(brain)
        return out

    def clear(self):
        del self.heap[:]
