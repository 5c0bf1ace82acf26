"""The zone simulation: entities with components, a per-tick system order, movement validation and replication."""

import math

from twisted.logger import Logger

from mmoshard.wire.codec import encode
from mmoshard.wire.output import sendEncodedMany
from mmoshard.world.interest import makeEngine
from mmoshard.world.zones import Terrain

# Entity kinds, the second field of an enter record.
PLAYER = "p"
NPC = "n"

# System order: lower runs first.  Later issues slot combat and NPC systems
# between movement and interest.
ORDER_INPUT = 100
ORDER_MOVE = 200
ORDER_PORTALS = 300
ORDER_COMBAT = 400
ORDER_NPC = 500
ORDER_INTEREST = 800
ORDER_REPLICATE = 900

_NUM = (int, float)


class Entity:
    """
    One thing in a zone.  Hot fields are slots; anything else (combat stats,
    AI state, a player's account) lives in C{components}, keyed by name.
    """

    __slots__ = (
        "id", "kind", "name", "cls", "level", "x", "y", "z", "vx", "vz", "ct",
        "session", "budget", "budgetAt", "corr", "components",
        # Combat state (a Combatant) and an NPC's brain; None when it has none.
        "combat", "ai",
        # Owned by the zone's interest space (PySpace keeps its state here).
        "slot", "cell", "visible", "watchers", "enters", "leaves",
    )

    def __init__(self, eid, kind, x, y, z, name="", cls="", level=1):
        self.id = eid
        self.kind = kind
        self.name = name
        self.cls = cls
        self.level = level
        self.x = x
        self.y = y
        self.z = z
        self.vx = 0.0
        self.vz = 0.0
        self.ct = 0
        self.slot = -1
        self.session = None  # an ISession for players: makes it an observer
        self.budget = 0.0  # metres of movement banked (latency tolerance)
        self.budgetAt = 0.0
        self.corr = 0  # correction count; inputs carry it back as "k"
        self.components = {}
        self.combat = None
        self.ai = None

    def fullState(self):
        """
        The enter record: everything an observer needs to show the entity;
        with combat state, also its health, maximum health, 1 when dead and
        1 when evading (an NPC walking home, immune).
        """
        c = self.combat
        if c is None:
            return [self.id, self.kind, self.name, self.cls, self.level,
                    self.x, self.y, self.z, self.vx, self.vz]
        return [self.id, self.kind, self.name, self.cls, self.level,
                self.x, self.y, self.z, self.vx, self.vz, int(c.hp), int(c.hpMax), int(c.dead), int(c.immune)]


class TickStats:
    """Counters of one zone, read by the metrics collector."""

    __slots__ = ("inputs", "corrections", "dropped", "updates", "bytesOut", "ticks")

    def __init__(self):
        self.inputs = 0
        self.corrections = 0
        self.dropped = 0
        self.updates = 0
        self.bytesOut = 0
        self.ticks = 0


class Zone:
    """
    One zone: its entities, the interest space (L{IInterestSpace}), the queue
    of client inputs and the ordered systems each tick runs.  The clock gives C{now}; nothing here
    touches sockets: observers have an C{ISession} whose C{send} queues bytes.
    """

    log = Logger()

    def __init__(self, spec, clock, engine="auto"):
        self.spec = spec
        self.id = spec.id
        self.clock = clock
        self.terrain = Terrain(spec)
        # The C movement loop comes with the C space: one engine choice.
        self.space, self._applyMoves, self._pickMove = makeEngine(spec, engine)
        self.entities = {}
        self.observers = {}  # id -> Entity with a session
        self.inputs = {}  # entity -> last move message this tick
        self.movers = set()  # server-driven entities integrated by velocity
        self.stats = TickStats()
        self.forced = set()  # observers to recompute next tick whatever their cell
        # Entities whose moves are dropped (a dead player): the input system
        # pops them before its loop, so nobody else's move pays for it.
        self.frozen = set()
        self.tickIndex = 0
        self.systems = []
        self.portalHandler = None  # callable(entity, portal) set by the service
        # Set by the service: the zone's Combat (ORDER_COMBAT) and NPC AI (ORDER_NPC).
        self.combat = None
        self.npcs = None
        # The runtime Instance (mmoshard.world.instances.host) whose copy this
        # zone is; None for an open-world zone.
        self.instance = None
        self.addSystem(ORDER_INPUT, "input", self.applyInputs)
        self.addSystem(ORDER_MOVE, "move", self.integrate)
        self.addSystem(ORDER_PORTALS, "portals", self.checkPortals)
        self.addSystem(ORDER_INTEREST, "interest", self.updateInterest)
        self.addSystem(ORDER_REPLICATE, "replicate", self.replicate)

    # --- systems ----------------------------------------------------------

    def addSystem(self, order, name, func):
        """Run C{func(zone, now, dt)}-style callables in C{order} each tick."""
        self.systems.append((order, name, func))
        self.systems.sort(key=lambda s: s[0])

    def tick(self, index, dt):
        """
        Run one tick: every system in order.  A system that raises is logged
        and the next ones still run: a bad entity in combat must not stop the
        zone's interest and replication.
        """
        self.tickIndex = index
        now = self.clock.seconds()
        for _, name, func in self.systems:
            try:
                func(now, dt)
            except Exception:
                self.log.failure("zone {zone}: system {system} failed in tick {index}",
                                 zone=self.id, system=name, index=index)
        self.stats.ticks += 1

    # --- entities ---------------------------------------------------------

    def spawn(self, entity, session=None):
        """Add C{entity}; with a C{session} it becomes an observer."""
        entity.y = self.spec.ground
        entity.session = session
        entity.budget = self.spec.max_speed * self.spec.latency_tolerance
        entity.budgetAt = self.clock.seconds()
        self.forced.add(entity)
        self.entities[entity.id] = entity
        if session is not None:
            self.observers[entity.id] = entity
        self.space.add(entity)

    def despawn(self, entity):
        """Remove C{entity}: observers that saw it get a leave next tick."""
        if self.entities.pop(entity.id, None) is None:
            return
        self.observers.pop(entity.id, None)
        self.inputs.pop(entity, None)
        self.forced.discard(entity)
        self.frozen.discard(entity)
        self.movers.discard(entity)
        self.space.remove(entity)
        entity.session = None

    def spawnPoint(self, x, y, z):
        """@return: (x, y, z) itself when valid here, else the first spawn point."""
        spec = self.spec
        if spec.inBounds(x, z) and not self.terrain.isBlocked(x, z):
            return x, spec.ground, z
        sx, sy, sz = spec.spawns[0]
        return sx, spec.ground, sz

    # --- input and movement ------------------------------------------------

    def queueMove(self, entity, message):
        """
        Keep a client's move for the next tick (the newest one wins), as
        the tuple C{(x, z, vx, vz, ct, k)} with the message's defaults: the
        message itself is freed at once, while it is still in the cache.
        """
        self.inputs[entity] = self._pickMove(message)
        self.stats.inputs += 1

    def freeze(self, entity, why):
        """
        C{entity} stops where it is and its moves are dropped until
        L{unfreeze} (a dead player): one correction (C{why}) tells its client.
        """
        if entity in self.frozen:
            return
        self.frozen.add(entity)
        self.inputs.pop(entity, None)
        self._correct(entity, why)

    def unfreeze(self, entity):
        """C{entity}'s moves count again."""
        self.frozen.discard(entity)

    def dropInput(self, entity):
        """Forget C{entity}'s move queued for the next tick (it stops where it is)."""
        self.inputs.pop(entity, None)

    def applyInputs(self, now, dt):
        """
        Validate each queued move (the hot loop: inlined, locals only) and
        accept it or answer it with a correction to the last valid position.
        """
        inputs = self.inputs
        if not inputs:
            return
        self.inputs = {}
        if self.frozen:
            for e in self.frozen:
                if inputs.pop(e, None) is not None:
                    self.stats.dropped += 1
            if not inputs:
                return
        spec = self.spec
        width = spec.width
        depth = spec.depth
        vmax = spec.max_speed
        vmax2 = vmax * vmax
        cap = vmax * (spec.latency_tolerance + spec.tickInterval)
        terrain = self.terrain if self.terrain.blocked else None
        correct = self._correct
        spaceMove = self.space.move
        if self._applyMoves is not None:
            # The same loop in C (mmoshard/world/_moves.c).
            dropped = self._applyMoves(inputs, now, width, depth, vmax, cap, terrain, correct, spaceMove)
            if dropped:
                self.stats.dropped += dropped
            return
        sqrt = math.sqrt
        num = _NUM
        dropped = 0
        for e, (x, z, vx, vz, ct, k) in inputs.items():
            if k != e.corr:
                # Sent before the client saw our last correction: stale, not a cheat.
                dropped += 1
                continue
            if type(x) not in num or type(z) not in num:
                correct(e, "bad position")
                continue
            # Also false for NaN and infinities.
            if not (0.0 <= x <= width and 0.0 <= z <= depth):
                correct(e, "out of bounds")
                continue
            dx = x - e.x
            dz = z - e.z
            dist = sqrt(dx * dx + dz * dz)
            budget = e.budget + vmax * (now - e.budgetAt)
            if budget > cap:
                budget = cap
            e.budgetAt = now
            if dist > budget + 1e-6:
                e.budget = budget
                correct(e, "too fast")
                continue
            if terrain is not None and (terrain.isBlocked(x, z)
                                        or terrain.pathBlocked(e.x, e.z, x, z)):
                e.budget = budget
                correct(e, "blocked")
                continue
            e.budget = budget - dist
            if (type(vx) not in num or type(vz) not in num
                    or not (-1e9 < vx < 1e9 and -1e9 < vz < 1e9)):
                vx = vz = 0.0
            else:
                v2 = vx * vx + vz * vz
                if v2 > vmax2:
                    f = vmax / sqrt(v2)
                    vx *= f
                    vz *= f
            e.ct = ct & 0xFFFFFFFF if type(ct) is int else 0
            if dist or vx != e.vx or vz != e.vz:
                e.x = x
                e.z = z
                e.vx = vx
                e.vz = vz
                spaceMove(e)
        if dropped:
            self.stats.dropped += dropped

    def _correct(self, e, why):
        e.corr += 1
        if e.vx or e.vz:
            # Observers stop extrapolating it: a move record with no velocity.
            e.vx = e.vz = 0.0
            self.space.move(e)
        self.stats.corrections += 1
        if e.session is not None:
            e.session.send("world.correct", {
                "x": e.x, "y": e.y, "z": e.z, "k": e.corr, "why": why,
            }, replayable=False)
        return False

    def teleport(self, e, x, z):
        """Put C{e} at (x, z) at once: server-side moves (spawn, portals, GM)."""
        e.x = x
        e.z = z
        e.budget = self.spec.max_speed * self.spec.latency_tolerance
        e.budgetAt = self.clock.seconds()
        e.corr += 1
        self.forced.add(e)
        self.space.move(e)
        if e.session is not None:
            e.session.send("world.correct", {"x": x, "y": e.y, "z": z, "k": e.corr,
                                             "why": "teleport"}, replayable=False)

    def integrate(self, now, dt):
        """Move server-driven entities (NPCs) by their velocity, inside bounds."""
        if not self.movers:
            return
        spec = self.spec
        for e in self.movers:
            if not (e.vx or e.vz):
                continue
            x = min(max(e.x + e.vx * dt, 0.0), spec.width)
            z = min(max(e.z + e.vz * dt, 0.0), spec.depth)
            if self.terrain.isBlocked(x, z):
                e.vx = e.vz = 0.0
                continue
            e.x = x
            e.z = z
            self.space.move(e)

    def checkPortals(self, now, dt):
        portals = self.spec.portals
        if not portals or self.portalHandler is None:
            return
        hits = []
        for e in self.space.moved():
            if e.session is None:
                continue
            for p in portals:
                if p.rect.contains(e.x, e.z):
                    hits.append((e, p))
                    break
        # After the loop: a handler may despawn the entity.
        for e, p in hits:
            self.portalHandler(e, p)

    # --- interest and replication ------------------------------------------

    def updateInterest(self, now, dt):
        forced, self.forced = self.forced, set()
        self.space.update(self.tickIndex, self.spec.aoi_interval, forced)

    def aoiPairs(self):
        """(observer, visible entity) pairs now: for metrics, not the tick."""
        return self.space.pairs()

    def visibleOf(self, e):
        """@return: the set of ids observer C{e} sees."""
        return self.space.visible(e)

    def watchersOf(self, e):
        """@return: the set of observer entities that see C{e}."""
        return self.space.watchers(e)

    def resetView(self, e):
        """Observer C{e} sees nothing and is recomputed next tick (a resumed session)."""
        self.space.reset(e)
        self.forced.add(e)

    def replicate(self, now, dt):
        """
        Send each observer one world.u with its enters, leaves, moves and
        combat records: the space encodes the common update (moves and
        records only) itself, and the rest get their enters' full state here.
        """
        sends, others, nbytes = self.space.replicate()
        states = {}
        entities = self.entities
        for ob, enters, leaves, m, c in others:
            body = {}
            if enters:
                ents = []
                for eid in enters:
                    s = states.get(eid)
                    if s is None:
                        s = states[eid] = entities[eid].fullState()
                    ents.append(s)
                body["e"] = ents
                nbytes += 40 * len(ents)
            if leaves:
                body["l"] = leaves
                nbytes += 5 * len(leaves)
            if m:
                body["m"] = m
                nbytes += len(m)
            if c:
                body["c"] = c
                nbytes += len(c)
            # As session.send("world.u", body, replayable=False) would, in
            # the same batch as the rest.
            body["t"] = "world.u"
            sends.append((ob.session, encode(body)))
        if sends:
            sendEncodedMany(sends, "world.u")
        nupdates = len(sends)  # the others included
        stats = self.stats
        stats.updates += nupdates
        stats.bytesOut += nbytes + 16 * nupdates
