"""Zone game data (size, spawn points, AOI radius, tick rate, blocked terrain, portals, NPC packs) read from TOML."""

import math

import attrs

from mmoshard.paths import readDataTOML
from mmoshard.world.combat.data import PackSpec

# Coordinates: the ground plane is (x, z) and y is height, as in etc/classes.toml
# (start point x=128, y=0, z=64).  Zones are flat: y is the zone's ground.


class ZoneDataError(ValueError):
    """The zones file is missing or malformed; the message lists every problem."""


@attrs.frozen
class Rect:
    """An axis-aligned rectangle on the ground plane, min corner inclusive."""

    x0: float
    z0: float
    x1: float
    z1: float

    def contains(self, x, z):
        return self.x0 <= x <= self.x1 and self.z0 <= z <= self.z1

    def corners(self):
        """@return: C{[x0, z0, x1, z1]}, as zone data and clients write a rectangle."""
        return [self.x0, self.z0, self.x1, self.z1]


@attrs.frozen
class Portal:
    """Walking into C{rect} takes a character to C{to} at C{arrive} (x, y, z)."""

    rect: Rect
    to: str
    arrive: tuple

    def clientView(self):
        """@return: what a client is told of this portal (docs/world.md, the zone of world.enter)."""
        return {"kind": "zone", "rect": self.rect.corners(), "to": self.to}


@attrs.frozen
class ZoneSpec:
    """One zone's static data."""

    id: str
    width: float  # along x
    depth: float  # along z
    ground: float = 0.0
    spawns: tuple = ((0.0, 0.0, 0.0),)
    aoi_radius: float = 50.0
    aoi_hysteresis: float = 5.0
    aoi_interval: int = 2  # ticks between two visibility recomputes of one observer
    tick_rate: float = 10.0
    max_speed: float = 7.0  # m/s a character may move
    latency_tolerance: float = 0.5  # seconds of movement budget banked for jitter
    tile: float = 4.0  # blocked-terrain tile size in metres
    blocked: tuple = ()  # Rects
    portals: tuple = ()
    # Combat (docs/combat.md): NPC packs (PackSpec), where released players
    # respawn ((x, y, z); None: the first spawn point), players may fight players.
    packs: tuple = ()
    graveyard: tuple | None = None
    pvp: bool = False

    @property
    def tickInterval(self):
        return 1.0 / self.tick_rate

    def inBounds(self, x, z):
        return 0.0 <= x <= self.width and 0.0 <= z <= self.depth


class Terrain:
    """The blocked tiles of one zone as a set of tile indices, for O(1) checks."""

    __slots__ = ("tile", "cols", "blocked")

    def __init__(self, spec):
        self.tile = spec.tile
        self.cols = int(math.ceil(spec.width / spec.tile)) + 1
        rows = int(math.ceil(spec.depth / spec.tile)) + 1
        blocked = set()
        for r in spec.blocked:
            for i in range(max(0, int(r.x0 // spec.tile)), min(self.cols, int(r.x1 // spec.tile) + 1)):
                for j in range(max(0, int(r.z0 // spec.tile)), min(rows, int(r.z1 // spec.tile) + 1)):
                    blocked.add(j * self.cols + i)
        self.blocked = frozenset(blocked)

    def isBlocked(self, x, z):
        if not self.blocked:
            return False
        t = self.tile
        return (int(z // t) * self.cols + int(x // t)) in self.blocked

    def pathBlocked(self, x0, z0, x1, z1):
        """True when the segment crosses a blocked tile (sampled at half-tile steps)."""
        if not self.blocked:
            return False
        dx = x1 - x0
        dz = z1 - z0
        steps = int(math.hypot(dx, dz) / (self.tile * 0.5)) + 1
        for k in range(1, steps + 1):
            f = k / steps
            if self.isBlocked(x0 + dx * f, z0 + dz * f):
                return True
        return False


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _point(v, n=3):
    return isinstance(v, list) and len(v) == n and all(_num(x) for x in v)


_SCALARS = {
    "ground": (float, lambda v: None),
    "aoi_radius": (float, lambda v: None if v > 0 else "must be greater than 0"),
    "aoi_hysteresis": (float, lambda v: None if v >= 0 else "must be 0 or more"),
    "aoi_interval": (int, lambda v: None if 1 <= v <= 20 else "must be 1..20"),
    "tick_rate": (float, lambda v: None if 0 < v <= 60 else "must be in (0, 60]"),
    "max_speed": (float, lambda v: None if v > 0 else "must be greater than 0"),
    "latency_tolerance": (float, lambda v: None if v >= 0 else "must be 0 or more"),
    "tile": (float, lambda v: None if v > 0 else "must be greater than 0"),
}


def parseZone(zid, raw, problems):
    """@return: a L{ZoneSpec} from one C{[zones.<id>]} table, appending to C{problems}."""
    path = f"zones.{zid}"
    known = set(_SCALARS) | {"size", "spawns", "blocked", "portals", "packs", "graveyard", "pvp"}
    for key in raw:
        if key not in known:
            problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
    size = raw.get("size")
    if not _point(size, 2) or min(size) <= 0:
        problems.append(f"{path}.size: expected [width, depth] in metres, both > 0")
        size = [100.0, 100.0]
    values = {}
    for key, (kind, check) in _SCALARS.items():
        if key not in raw:
            continue
        v = raw[key]
        if not _num(v) or (kind is int and not isinstance(v, int)):
            problems.append(f"{path}.{key}: expected a number, got {v!r}")
            continue
        error = check(v)
        if error:
            problems.append(f"{path}.{key}: {error}")
            continue
        values[key] = kind(v)
    width, depth = float(size[0]), float(size[1])
    spawns = raw.get("spawns", [[width / 2, values.get("ground", 0.0), depth / 2]])
    if not isinstance(spawns, list) or not spawns or not all(_point(p) for p in spawns):
        problems.append(f"{path}.spawns: expected a list of [x, y, z] points")
        spawns = [[0.0, 0.0, 0.0]]
    for p in spawns:
        if _point(p) and not (0 <= p[0] <= width and 0 <= p[2] <= depth):
            problems.append(f"{path}.spawns: {p} is outside the zone")
    blocked = []
    for r in raw.get("blocked", []):
        if not _point(r, 4) or r[0] > r[2] or r[1] > r[3]:
            problems.append(f"{path}.blocked: expected [x0, z0, x1, z1] with x0<=x1, z0<=z1, got {r!r}")
            continue
        blocked.append(Rect(*(float(v) for v in r)))
    portals = []
    for i, p in enumerate(raw.get("portals", [])):
        ppath = f"{path}.portals[{i}]"
        if not isinstance(p, dict) or not _point(p.get("rect"), 4) or not isinstance(p.get("to"), str):
            problems.append(f"{ppath}: expected {{rect = [x0, z0, x1, z1], to = \"zone\", arrive = [x, y, z]}}")
            continue
        arrive = p.get("arrive")
        if not _point(arrive):
            problems.append(f"{ppath}.arrive: expected [x, y, z]")
            continue
        portals.append(Portal(Rect(*(float(v) for v in p["rect"])), p["to"], tuple(float(v) for v in arrive)))
    pvp = raw.get("pvp", False)
    if not isinstance(pvp, bool):
        problems.append(f"{path}.pvp: expected true or false, got {pvp!r}")
        pvp = False
    spec = ZoneSpec(
        id=zid,
        width=width,
        depth=depth,
        spawns=tuple(tuple(float(v) for v in p) for p in spawns),
        blocked=tuple(blocked),
        portals=tuple(portals),
        pvp=pvp,
        **values,
    )
    # Packs and the graveyard are checked against the terrain built above.
    terrain = Terrain(spec)
    graveyard = raw.get("graveyard")
    if graveyard is not None:
        if not _point(graveyard):
            problems.append(f"{path}.graveyard: expected [x, y, z], got {graveyard!r}")
            graveyard = None
        else:
            graveyard = tuple(float(v) for v in graveyard)
            problems.extend(_placeProblems(spec, terrain, f"{path}.graveyard", graveyard[0], graveyard[2]))
    packs = raw.get("packs", [])
    if not isinstance(packs, list):
        problems.append(f"{path}.packs: expected [[zones.{zid}.packs]] tables")
        packs = []
    parsed = []
    for i, p in enumerate(packs):
        pack = parsePack(spec, terrain, f"{path}.packs[{i}]", p, problems)
        if pack is not None:
            parsed.append(pack)
    return attrs.evolve(spec, packs=tuple(parsed), graveyard=graveyard)


def _placeProblems(spec, terrain, path, x, z):
    """@return: the problems of placing something at (x, z): outside the zone, on blocked terrain."""
    if not spec.inBounds(x, z):
        return [f"{path}: ({x:g}, {z:g}) is outside the zone"]
    if terrain.isBlocked(x, z):
        return [f"{path}: ({x:g}, {z:g}) is on blocked terrain"]
    return []


_PACK_KEYS = ("members", "at", "spread", "respawn", "patrol")


def parsePack(spec, terrain, path, raw, problems):
    """
    @return: a L{PackSpec} from one C{[[zones.<id>.packs]]} table, or None
        when it has problems (appended).  Its members' NPC types are checked
        against the game data by the world config, which loads both.
    """
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a table {{members = [...], at = [x, z]}}")
        return None
    before = len(problems)
    for key in raw:
        if key not in _PACK_KEYS:
            problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(_PACK_KEYS))})")
    members = raw.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        problems.append(f"{path}.members: expected a non-empty list of NPC type ids, got {members!r}")
    at = raw.get("at")
    spread = raw.get("spread", attrs.fields(PackSpec).spread.default)
    respawn = raw.get("respawn", attrs.fields(PackSpec).respawn.default)
    if not _num(spread) or spread < 0:
        problems.append(f"{path}.spread: expected a number of metres, 0 or more, got {spread!r}")
        spread = 0.0
    if not _num(respawn) or respawn <= 0:
        problems.append(f"{path}.respawn: expected seconds greater than 0, got {respawn!r}")
    if not _point(at, 2):
        problems.append(f"{path}.at: expected [x, z], got {at!r}")
    else:
        x, z = at
        found = _placeProblems(spec, terrain, f"{path}.at", x, z)
        problems.extend(found)
        if not found and not (spec.inBounds(x - spread, z - spread) and spec.inBounds(x + spread, z + spread)):
            problems.append(f"{path}.spread: members placed {spread:g} m around ({x:g}, {z:g}) may be outside the zone")
    patrol = raw.get("patrol", [])
    if not isinstance(patrol, list) or len(patrol) == 1 or not all(_point(q, 2) for q in patrol):
        problems.append(f"{path}.patrol: expected a list of two or more [x, z] points, got {patrol!r}")
        patrol = []
    for j, (x, z) in enumerate(patrol):
        problems.extend(_placeProblems(spec, terrain, f"{path}.patrol[{j}]", x, z))
    if patrol and _point(at, 2) and len(problems) == before:
        # The pack walks from its place to the first point, then around the loop.
        legs = [tuple(at)] + [tuple(q) for q in patrol] + [tuple(patrol[0])]
        for (x0, z0), (x1, z1) in zip(legs, legs[1:]):
            if terrain.pathBlocked(x0, z0, x1, z1):
                problems.append(f"{path}.patrol: the way from ({x0:g}, {z0:g}) to ({x1:g}, {z1:g}) "
                                "crosses blocked terrain")
    if len(problems) > before:
        return None
    return PackSpec(
        members=tuple(members),
        at=(float(at[0]), float(at[1])),
        spread=float(spread),
        respawn=float(respawn),
        patrol=tuple((float(x), float(z)) for x, z in patrol),
    )


def parseZones(raw, source="zones"):
    """@return: dict zone id -> L{ZoneSpec}; @raise ZoneDataError: listing every problem."""
    problems = []
    table = raw.get("zones")
    if not isinstance(table, dict) or not table:
        raise ZoneDataError(f"{source}: no [zones.<id>] tables")
    zones = {}
    for zid, spec in table.items():
        if not isinstance(spec, dict):
            problems.append(f"zones.{zid}: expected a table")
            continue
        zones[zid] = parseZone(zid, spec, problems)
    for z in zones.values():
        for p in z.portals:
            if p.to not in zones:
                problems.append(f"zones.{z.id}: portal to unknown zone {p.to!r}")
            elif not zones[p.to].inBounds(p.arrive[0], p.arrive[2]):
                problems.append(f"zones.{z.id}: portal arrival {p.arrive} is outside {p.to}")
            elif any(q.rect.contains(p.arrive[0], p.arrive[2]) for q in zones[p.to].portals):
                problems.append(f"zones.{z.id}: portal arrival {p.arrive} is inside a portal of {p.to}")
    if problems:
        raise ZoneDataError(f"{source}: " + "; ".join(problems))
    return zones


def loadZones(path):
    """Read the zones file (see C{etc/zones.toml}); @raise ZoneDataError."""
    raw = readDataTOML(path, ZoneDataError)
    return parseZones(raw, path)
