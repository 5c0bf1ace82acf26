"""An NPC's brain (its AI state at C{entity.ai}) and what it decides with: its target and abilities, the aggro grid, walking under the terrain rules."""

import math

from mmoshard.world.sim import PLAYER

# Brain states (docs/combat.md, "NPCs").
IDLE = "idle"  # standing at home: costs nothing per tick
PATROL = "patrol"  # walking its pack's patrol loop
COMBAT = "combat"  # chasing and attacking the top of its threat table
EVADE = "evade"  # walking back to where it was pulled, immune
DEAD = "dead"  # a corpse until its pack's respawn time

# Patrols walk; chases and evades run at the type's speed.
WALK_SPEED = 2.5
# Close enough to a point to count as there.
ARRIVED = 0.05
# An NPC with a heal on itself uses it below this fraction of its health.
SELF_HEAL_BELOW = 0.5


class Brain:
    """
    The AI state of one NPC, at C{entity.ai}.

    @ivar spawnId: C{"<zone>:<pack index>:<member index>"}, stable across
        restarts (reward idempotency keys use it).
    @ivar homeX: where it spawns and respawns (C{homeZ} likewise).
    @ivar anchorX: where it was pulled (C{anchorZ}): the leash is measured
        from there and it evades back there (its home when it was idle; a
        point of the loop for a patroller).
    @ivar offX: its offset from its pack's centre (C{offZ}): patrollers keep
        their formation.
    @ivar waypoint: the index of the patrol point it walks to.
    @ivar aggro2: its type's aggro radius, squared.
    @ivar abilities: the L{AbilitySpec}s of its type, in the data's order.
    @ivar nextSwing: when its next melee swing may happen.
    @ivar scanUntil: the tick until which it looks for players around it
        itself (just home or respawned: players standing still do not move).
    @ivar stuckSince: since when a chase makes no progress (terrain), or None.
    @ivar encounter: the id of the boss encounter it is part of (the boss
        or one of its adds; the encounter rewards the kill, not the
        open-world rewards), else None.
    """

    __slots__ = (
        "entity", "type", "pack", "packIndex", "spawnId", "homeX", "homeZ", "anchorX", "anchorZ",
        "offX", "offZ", "state", "waypoint", "aggro2", "abilities", "nextSwing", "scanUntil",
        "stuckSince", "deaths", "cell", "cells", "encounter",
    )

    def __init__(self, entity, npcType, pack, packIndex, spawnId, x, z, offX, offZ, abilities):
        self.entity = entity
        self.type = npcType
        self.pack = pack
        self.packIndex = packIndex
        self.spawnId = spawnId
        self.homeX = self.anchorX = x
        self.homeZ = self.anchorZ = z
        self.offX = offX
        self.offZ = offZ
        self.state = IDLE
        self.waypoint = 0
        self.aggro2 = npcType.aggro_radius * npcType.aggro_radius
        self.abilities = abilities
        self.nextSwing = 0.0
        self.scanUntil = 0
        self.stuckSince = None
        self.deaths = 0
        self.cell = -1  # its aggro grid cell while registered
        self.cells = ()  # the cells it is registered in
        self.encounter = None

    def __repr__(self):
        return f"<Brain {self.spawnId} id={self.entity.id} {self.state}>"


def topTarget(zone, npc):
    """
    @return: the top of C{npc}'s threat table that is alive and in C{zone},
        or None; dead or departed ones leave the table.
    """
    threat = npc.combat.threat
    entities = zone.entities
    while True:
        t = threat.top()
        if t is None:
            return None
        c = t.combat
        if c is not None and not c.dead and entities.get(t.id) is t:
            return t
        threat.remove(t)
        if c is not None:
            c.engaged.discard(npc)


def readyAbilities(brain, target, dist, now):
    """
    Yield C{(ability, at)} for the abilities of C{brain}'s NPC that are off
    cooldown and fit now, in its type's order: enemy ones (and taunts) on
    C{target} within their range, area ones (centred on itself, C{at} None)
    when C{target} is within their radius, heals on itself below
    L{SELF_HEAL_BELOW} of its health, other self ones as soon as ready.
    """
    n = brain.entity
    c = n.combat
    gcd = c.gcdUntil > now
    cooldowns = c.cooldowns
    for spec in brain.abilities:
        if cooldowns.get(spec.id, 0.0) > now or (gcd and spec.gcd > 0):
            continue
        where = spec.target
        if where == "enemy" or spec.kind == "taunt":
            if dist <= spec.range:
                yield spec, target
        elif where == "area":
            if dist <= (spec.radius or spec.range):
                yield spec, None
        elif spec.kind != "heal" or c.hp <= c.hpMax * SELF_HEAL_BELOW:
            yield spec, n


class AggroGrid:
    """
    A uniform grid of cells of side C{size} (the zone's largest aggro
    radius).  Idle and patrolling NPCs are registered in the 3x3 cells
    around their own, which hold their whole aggro disk, so a moved player
    finds the NPCs that may aggro on it with one lookup, and a patroller
    registers again only when it changes cell.  Cells map to
    insertion-ordered dicts: iteration, and so the tests, are deterministic.
    """

    __slots__ = ("size", "cols", "rows", "cells")

    def __init__(self, width, depth, size):
        self.size = float(size)
        self.cols = int(width // self.size) + 1
        self.rows = int(depth // self.size) + 1
        self.cells = {}  # cell -> {brain: None}

    def cellOf(self, x, z):
        s = self.size
        return int(z // s) * self.cols + int(x // s)

    def disk(self, x, z, r):
        """@return: the cells the disk of radius C{r} at (x, z) touches."""
        s = self.size
        i0 = max(0, int((x - r) // s))
        i1 = min(self.cols - 1, int((x + r) // s))
        j0 = max(0, int((z - r) // s))
        j1 = min(self.rows - 1, int((z + r) // s))
        cols = self.cols
        return [j * cols + i for j in range(j0, j1 + 1) for i in range(i0, i1 + 1)]

    def place(self, brain, x, z):
        """Register C{brain} around (x, z): a no-op while it stays in the same cell."""
        cell = self.cellOf(x, z)
        if cell == brain.cell:
            return
        self.discard(brain)
        grid = self.cells
        cols = self.cols
        i = cell % cols
        j = cell // cols
        cells = tuple(b * cols + a for b in range(max(0, j - 1), min(self.rows, j + 2))
                      for a in range(max(0, i - 1), min(cols, i + 2)))
        for c in cells:
            members = grid.get(c)
            if members is None:
                grid[c] = {brain: None}
            else:
                members[brain] = None
        brain.cell = cell
        brain.cells = cells

    def discard(self, brain):
        grid = self.cells
        for c in brain.cells:
            members = grid[c]
            del members[brain]
            if not members:
                del grid[c]
        brain.cells = ()
        brain.cell = -1

    def players(self, observers):
        """@return: cell -> [player entities] of C{observers} (a zone's), for NPCs looking around."""
        out = {}
        size = self.size
        cols = self.cols
        for p in observers:
            if p.kind == PLAYER:
                cell = int(p.z // size) * cols + int(p.x // size)
                inCell = out.get(cell)
                if inCell is None:
                    out[cell] = [p]
                else:
                    inCell.append(p)
        return out

    def around(self, x, z, r):
        """@return: the registered brains whose cells meet the disk of radius C{r} at (x, z), each once."""
        out = {}
        grid = self.cells
        for c in self.disk(x, z, r):
            members = grid.get(c)
            if members:
                out.update(members)
        return list(out)


def stop(zone, e):
    """C{e} stands still: one move record without velocity, so observers stop extrapolating."""
    if e.vx or e.vz:
        e.vx = e.vz = 0.0
        zone.space.move(e)


def _free(terrain, x0, z0, x1, z1):
    return not terrain.isBlocked(x1, z1) and not terrain.pathBlocked(x0, z0, x1, z1)


def walk(zone, e, tx, tz, speed, dt, within=0.0):
    """
    Move C{e} up to C{speed * dt} metres towards (tx, tz), stopping
    C{within} metres short, under the players' terrain rules: never onto
    or through a blocked tile; a blocked step slides along one axis, else
    it stops.  Its velocity is what observers extrapolate: zero on the step
    that arrives.

    @return: C{(left, stuck)}: the distance to (tx, tz) after the step, and
        True when terrain stopped it.
    """
    x = e.x
    z = e.z
    dx = tx - x
    dz = tz - z
    dist = math.sqrt(dx * dx + dz * dz)
    want = dist - within
    if want <= ARRIVED or dt <= 0.0:
        stop(zone, e)
        return dist, False
    full = speed * dt
    arriving = full >= want
    if arriving and within == 0.0:
        nx = tx  # exactly there: no rounding drift on arrival
        nz = tz
    else:
        f = (want if arriving else full) / dist
        nx = x + dx * f
        nz = z + dz * f
    spec = zone.spec
    nx = min(max(nx, 0.0), spec.width)
    nz = min(max(nz, 0.0), spec.depth)
    terrain = zone.terrain
    slid = False
    if terrain.blocked and not _free(terrain, x, z, nx, nz):
        # Slide along the wall: the larger component first.
        if abs(dx) >= abs(dz):
            options = ((nx, z), (x, nz))
        else:
            options = ((x, nz), (nx, z))
        for sx, sz in options:
            if (sx != x or sz != z) and _free(terrain, x, z, sx, sz):
                nx, nz = sx, sz
                arriving = False
                slid = True
                break
        else:
            stop(zone, e)
            return dist, True
    if arriving:
        e.vx = e.vz = 0.0
    elif slid:
        e.vx = (nx - x) / dt
        e.vz = (nz - z) / dt
    else:
        e.vx = speed * dx / dist
        e.vz = speed * dz / dist
    e.x = nx
    e.z = nz
    zone.space.move(e)
    return math.hypot(tx - nx, tz - nz), False
