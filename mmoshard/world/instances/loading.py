"""Reading instance templates (etc/instances.toml) into InstanceSpecs, cross-checked with the zones and game data, every problem at once."""

import re

import attrs

from mmoshard.paths import readDataTOML
from mmoshard.world.combat.loading import (
    above, atLeast, between, isNumber, nonEmpty, oneOf, parseLoot, readScalars,
)
from mmoshard.world.instances.data import (
    KINDS, LOCKOUTS, WEEKDAYS, AddSpawn, BossSpec, Entrance, InstanceSpec, Phase, TimedAbility,
)
from mmoshard.world.zones import Rect, Terrain, parsePack, parseZone

# Reference of every key: docs/instances.md ("Templates").

# Template and boss ids name zones ("<template>/<n>") and ledger keys
# ("boss:<instance>:<boss>:..."): no separators in them.
ID = re.compile(r"^[a-z0-9_]+$")
TARGETS = ("top", "random", "self")
MAX_PARTY = 40
MAX_ADDS = 40
# Layout keys an instance does not take: its way out is `exit`, its
# NPCs are the template's packs and bosses (which never respawn).
LAYOUT_EXCLUDED = {
    "portals": "an instance layout has no portals (its way out is the template's exit)",
    "packs": "an instance's packs are the template's [[instances.<id>.packs]]",
}


class InstanceDataError(ValueError):
    """The instances file is missing or malformed; C{problems} lists every problem, the message all of them."""

    def __init__(self, problems, source):
        self.problems = tuple(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


def _point(v, n):
    return isinstance(v, list) and len(v) == n and all(isNumber(x) for x in v)


def _id(v):
    return None if ID.match(v) else "must be lower-case letters, digits and _"


_TEMPLATE = {
    "name": (str, nonEmpty),
    "kind": (str, oneOf(KINDS)),
    "party_size": (int, between(1, MAX_PARTY)),
    "lockout": (str, oneOf(LOCKOUTS)),
    "reset_hour": (int, between(0, 23)),
    "reset_day": (str, oneOf(WEEKDAYS)),
    "empty_timeout": (float, above(0)),
    "max_duration": (float, above(0)),
    "match_duration": (float, above(0)),
    "start_grace": (float, atLeast(0)),
    "close_delay": (float, atLeast(0)),
}
# The keys only an arena takes, and what an arena has none of.
ARENA_ONLY = ("match_duration", "start_grace", "close_delay")
ARENA_NONE = {
    "bosses": "an arena has no bosses: its teams fight each other",
    "packs": "an arena has no trash: its teams fight each other",
    "entrance": "an arena is entered only with the tickets of its match (IInstances.create)",
}
_TEMPLATE_REQUIRED = ("name", "kind", "party_size")
_TEMPLATE_OTHERS = ("layout", "exit", "entrance", "bosses", "packs")
_BOSS = {
    "id": (str, _id),
    "npc": (str, None),
    "exp": (int, atLeast(0)),
    "enrage": (float, atLeast(0)),
    "enrage_damage": (float, above(0)),
}
_PHASE = {"below": (float, lambda v: None if 0 < v <= 1 else "must be in (0, 1]")}
_TIMED = {
    "ability": (str, None),
    "every": (float, above(0)),
    "first": (float, atLeast(0)),
    "target": (str, oneOf(TARGETS)),
}
_ADD = {"npc": (str, None), "count": (int, between(1, MAX_ADDS))}


class _Unreadable(Exception):
    """The instances file cannot be read or is not TOML (becomes the one problem of an L{InstanceDataError})."""


class _Everything:
    """Stands for the item ids when the game data did not load: loot is then checked for its form only."""

    def __contains__(self, item):
        return True


def _rect(v):
    """@return: a L{Rect} from [x0, z0, x1, z1], or None when malformed."""
    if not _point(v, 4) or v[0] > v[2] or v[1] > v[3]:
        return None
    return Rect(*(float(x) for x in v))


def _rectInside(rect, spec):
    return spec.inBounds(rect.x0, rect.z0) and spec.inBounds(rect.x1, rect.z1)


def _overlap(a, b):
    return a.x0 <= b.x1 and b.x0 <= a.x1 and a.z0 <= b.z1 and b.z0 <= a.z1


def _place(spec, terrain, path, x, z, problems):
    """Append the problems of placing something at (x, z) of C{spec}; @return: True when there were none."""
    if not spec.inBounds(x, z):
        problems.append(f"{path}: ({x:g}, {z:g}) is outside the zone")
        return False
    if terrain.isBlocked(x, z):
        problems.append(f"{path}: ({x:g}, {z:g}) is on blocked terrain")
        return False
    return True


def _tableList(raw, key, path, problems):
    """@return: the list of tables at C{raw[key]} (empty when absent or malformed)."""
    v = raw.get(key, [])
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        problems.append(f"{path}.{key}: expected a list of tables, got {v!r}")
        return []
    return v


def _layout(tid, raw, path, problems):
    """@return: the layout's ZoneSpec (id C{tid}) or None, its problems under C{path}.layout."""
    if not isinstance(raw, dict):
        problems.append(f"{path}.layout: required: a table as a [zones.<id>] of etc/zones.toml")
        return None
    for key, why in LAYOUT_EXCLUDED.items():
        if key in raw:
            problems.append(f"{path}.layout.{key}: {why}")
    found = []
    spec = parseZone(tid, {k: v for k, v in raw.items() if k not in LAYOUT_EXCLUDED}, found)
    # parseZone names its paths zones.<id>: here they are the layout's.
    prefix = f"zones.{tid}"
    problems.extend(f"{path}.layout{p[len(prefix):]}" if p.startswith(prefix) else f"{path}.layout: {p}"
                    for p in found)
    return spec


def _timed(path, raw, game, problems):
    """@return: a L{TimedAbility} or None (problems appended)."""
    before = len(problems)
    v = readScalars(raw, path, _TIMED, ("ability", "every"), problems)
    aid = v.get("ability")
    if aid is not None and game is not None:
        ability = game.abilities.get(aid)
        if ability is None:
            problems.append(f"{path}.ability: unknown ability {aid!r}")
        elif ability.cls != "npc":
            problems.append(f"{path}.ability: {aid!r} is an ability of {ability.cls!r}, not of \"npc\"")
        else:
            target = v.get("target", "top")
            if ability.target == "self" and target != "self":
                problems.append(f"{path}.target: {aid!r} is cast on its caster: target must be \"self\"")
            elif ability.target == "enemy" and target == "self":
                problems.append(f"{path}.target: {aid!r} is aimed at an enemy: target must be top or random")
    if len(problems) > before:
        return None
    return TimedAbility(**v)


def _add(path, raw, layout, terrain, game, problems):
    """@return: an L{AddSpawn} or None (problems appended)."""
    before = len(problems)
    v = readScalars(raw, path, _ADD, ("npc",), problems, others=("at",))
    if "npc" in v and game is not None and v["npc"] not in game.npcs:
        problems.append(f"{path}.npc: unknown NPC type {v['npc']!r}")
    at = raw.get("at")
    if at is not None:
        if not _point(at, 2):
            problems.append(f"{path}.at: expected [x, z], got {at!r}")
        elif layout is not None:
            _place(layout, terrain, f"{path}.at", at[0], at[1], problems)
    if len(problems) > before:
        return None
    return AddSpawn(at=None if at is None else (float(at[0]), float(at[1])), **v)


def _phases(path, raw, layout, terrain, game, problems):
    """@return: the boss's phases (L{Phase}), checked in order: the first at 1.0, then falling."""
    tables = _tableList(raw, "phases", path, problems)
    if not raw.get("phases", []):
        problems.append(f"{path}.phases: required: at least one [[...phases]] with below = 1.0")
    phases = []
    for i, p in enumerate(tables):
        ppath = f"{path}.phases[{i}]"
        before = len(problems)
        v = readScalars(p, ppath, _PHASE, ("below",), problems, others=("abilities", "adds"))
        abilities = tuple(_timed(f"{ppath}.abilities[{j}]", t, game, problems)
                          for j, t in enumerate(_tableList(p, "abilities", ppath, problems)))
        adds = tuple(_add(f"{ppath}.adds[{j}]", t, layout, terrain, game, problems)
                     for j, t in enumerate(_tableList(p, "adds", ppath, problems)))
        if len(problems) == before:
            phases.append(Phase(below=v["below"], abilities=abilities, adds=adds))
        elif "below" in v:
            phases.append(Phase(below=v["below"]))  # still ordered below
    belows = [ph.below for ph in phases]
    if belows and belows[0] != 1.0:
        problems.append(f"{path}.phases[0].below: the first phase starts at 1.0, got {belows[0]:g}")
    for i in range(1, len(belows)):
        if belows[i] >= belows[i - 1]:
            problems.append(f"{path}.phases: below must fall from phase to phase "
                            f"({belows[i - 1]:g}, then {belows[i]:g})")
    return tuple(phases)


def _boss(path, raw, layout, terrain, game, problems):
    """@return: a L{BossSpec} or None (problems appended)."""
    before = len(problems)
    v = readScalars(raw, path, _BOSS, ("id", "npc"), problems, others=("at", "phases", "loot"))
    if "npc" in v and game is not None and v["npc"] not in game.npcs:
        problems.append(f"{path}.npc: unknown NPC type {v['npc']!r}")
    at = raw.get("at")
    if not _point(at, 2):
        problems.append(f"{path}.at: expected [x, z], got {at!r}")
    elif layout is not None:
        _place(layout, terrain, f"{path}.at", at[0], at[1], problems)
    phases = _phases(path, raw, layout, terrain, game, problems)
    loot = parseLoot(f"{path}.loot", raw.get("loot", []), _Everything() if game is None else game.items, problems)
    if len(problems) > before:
        return None
    return BossSpec(at=(float(at[0]), float(at[1])), phases=phases, loot=loot, **v)


def _entrance(path, raw, zones, problems):
    """@return: an L{Entrance} or None (problems appended): a portal rect and arrival point in an open-world zone."""
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected {{zone = \"...\", rect = [x0, z0, x1, z1], arrive = [x, y, z]}}")
        return None
    before = len(problems)
    v = readScalars(raw, path, {"zone": (str, None)}, ("zone",), problems, others=("rect", "arrive"))
    rect = _rect(raw.get("rect"))
    if rect is None:
        problems.append(f"{path}.rect: expected [x0, z0, x1, z1] with x0<=x1, z0<=z1, got {raw.get('rect')!r}")
    arrive = raw.get("arrive")
    if not _point(arrive, 3):
        problems.append(f"{path}.arrive: expected [x, y, z], got {arrive!r}")
        arrive = None
    zid = v.get("zone")
    zone = zones.get(zid) if zid is not None else None
    if zid is not None and zones and zone is None:
        problems.append(f"{path}.zone: unknown zone {zid!r} (known: {', '.join(sorted(zones))})")
    if zone is not None:
        if rect is not None and not _rectInside(rect, zone):
            problems.append(f"{path}.rect: {list(attrs.astuple(rect))} is not inside {zid}")
        if rect is not None:
            for portal in zone.portals:
                if _overlap(rect, portal.rect):
                    problems.append(f"{path}.rect: overlaps the portal of {zid} to {portal.to}")
        if arrive is not None and _place(zone, Terrain(zone), f"{path}.arrive", arrive[0], arrive[2], problems):
            if rect is not None and rect.contains(arrive[0], arrive[2]):
                problems.append(f"{path}.arrive: inside the entrance's own rect")
            for portal in zone.portals:
                if portal.rect.contains(arrive[0], arrive[2]):
                    problems.append(f"{path}.arrive: inside the portal of {zid} to {portal.to}")
    if len(problems) > before:
        return None
    return Entrance(zone=zid, rect=rect, arrive=tuple(float(x) for x in arrive))


def parseTemplate(tid, raw, zones, game, problems):
    """
    @param zones: the open-world zones (id -> ZoneSpec; empty when they
        did not load: the entrance is then checked for its form only).
    @param game: the L{GameData}, or None when it did not load (NPC
        types, abilities and items are then not cross-checked).
    @return: an L{InstanceSpec} from one C{[instances.<id>]} table, or
        None when it has problems (appended).
    """
    path = f"instances.{tid}"
    before = len(problems)
    if not ID.match(tid):
        problems.append(f"{path}: a template id is lower-case letters, digits and _")
    if tid in zones:
        problems.append(f"{path}: {tid!r} is also an open-world zone of the zones file")
    v = readScalars(raw, path, _TEMPLATE, _TEMPLATE_REQUIRED, problems, others=_TEMPLATE_OTHERS)
    layout = _layout(tid, raw.get("layout"), path, problems)
    terrain = Terrain(layout) if layout is not None else None
    if layout is not None:
        for i, s in enumerate(layout.spawns):
            if terrain.isBlocked(s[0], s[2]):
                problems.append(f"{path}.layout.spawns[{i}]: ({s[0]:g}, {s[2]:g}) is on blocked terrain")
    exit = _rect(raw.get("exit"))
    if "exit" not in raw:
        problems.append(f"{path}.exit: required: [x0, z0, x1, z1] in the layout, where players walk out")
    elif exit is None:
        problems.append(f"{path}.exit: expected [x0, z0, x1, z1] with x0<=x1, z0<=z1, got {raw['exit']!r}")
    elif layout is not None:
        if not _rectInside(exit, layout):
            problems.append(f"{path}.exit: {list(attrs.astuple(exit))} is not inside the layout")
        elif exit.contains(layout.spawns[0][0], layout.spawns[0][2]):
            problems.append(f"{path}.exit: contains the layout's first spawn point, where players enter")
    arena = v.get("kind") == "arena"
    if arena:
        _checkArena(path, raw, v, layout, problems)
    else:
        for key in ARENA_ONLY:
            if key in raw:
                problems.append(f"{path}.{key}: only an arena (kind = \"arena\") takes it")
    entrance = None
    if "entrance" in raw and not arena:
        entrance = _entrance(f"{path}.entrance", raw["entrance"], zones, problems)
    bosses = []
    for i, b in enumerate(_tableList(raw, "bosses", path, problems)):
        boss = _boss(f"{path}.bosses[{i}]", b, layout, terrain, game, problems)
        if boss is not None:
            bosses.append(boss)
    if not raw.get("bosses", []) and not arena:
        problems.append(f"{path}.bosses: required: at least one [[instances.{tid}.bosses]]")
    ids = [b.id for b in bosses]
    for bid in sorted({b for b in ids if ids.count(b) > 1}):
        problems.append(f"{path}.bosses: boss id {bid!r} is used twice")
    packs = []
    for i, p in enumerate(_tableList(raw, "packs", path, problems)):
        ppath = f"{path}.packs[{i}]"
        if "respawn" in p:
            problems.append(f"{ppath}.respawn: an instance's packs never respawn")
        if layout is None:
            continue
        pack = parsePack(layout, terrain, ppath, {k: x for k, x in p.items() if k != "respawn"}, problems)
        if pack is not None and game is not None:
            for member in sorted(set(pack.members) - set(game.npcs)):
                problems.append(f"{ppath}.members: unknown NPC type {member!r}")
        if pack is not None:
            packs.append(pack)
    if len(problems) > before:
        return None
    return InstanceSpec(id=tid, layout=layout, exit=exit, entrance=entrance, bosses=tuple(bosses),
                        packs=tuple(packs), **v)


def _checkArena(path, raw, values, layout, problems):
    """Append what an arena template may not have: bosses, trash, an entrance, one spawn point, a match longer than the copy."""
    for key, why in ARENA_NONE.items():
        if key in raw:
            problems.append(f"{path}.{key}: {why}")
    if layout is not None and len(layout.spawns) < 2:
        problems.append(f"{path}.layout.spawns: an arena needs two spawn points, where its "
                        "two teams start")
    defaults = attrs.fields(InstanceSpec)
    match = values.get("match_duration", defaults.match_duration.default)
    close = values.get("close_delay", defaults.close_delay.default)
    longest = values.get("max_duration", defaults.max_duration.default)
    if match + close >= longest:
        problems.append(f"{path}.max_duration: must exceed match_duration + close_delay "
                        f"({match:g} + {close:g})")


def _crossTemplates(templates, problems):
    """Entrances of two templates in one zone: neither's rect overlaps the other's, nor holds its arrival point."""
    entrances = [(t.id, t.entrance) for t in templates.values() if t.entrance is not None]
    for i, (a, ea) in enumerate(entrances):
        for b, eb in entrances[i + 1:]:
            if ea.zone != eb.zone:
                continue
            if _overlap(ea.rect, eb.rect):
                problems.append(f"instances.{b}.entrance.rect: overlaps the entrance of {a}")
            if ea.rect.contains(eb.arrive[0], eb.arrive[2]):
                problems.append(f"instances.{b}.entrance.arrive: inside the entrance of {a}")
            if eb.rect.contains(ea.arrive[0], ea.arrive[2]):
                problems.append(f"instances.{a}.entrance.arrive: inside the entrance of {b}")


def parseInstances(raw, zones, game, source="instances.toml"):
    """
    @param raw: the parsed instances file.
    @return: dict template id -> L{InstanceSpec}.
    @raise InstanceDataError: listing every problem.
    """
    problems = []
    for key in raw:
        if key != "instances":
            problems.append(f"{key}: unknown table (known: instances)")
    table = raw.get("instances", {})
    if not isinstance(table, dict):
        problems.append("instances: expected [instances.<id>] tables")
        table = {}
    templates = {}
    for tid, spec in table.items():
        if not isinstance(spec, dict):
            problems.append(f"instances.{tid}: expected a table")
            continue
        template = parseTemplate(tid, spec, zones, game, problems)
        if template is not None:
            templates[tid] = template
    _crossTemplates(templates, problems)
    if problems:
        raise InstanceDataError(problems, source)
    return templates


def loadInstances(path, zones, game):
    """
    Read the instances file (see C{etc/instances.toml}) and check it with
    the open-world C{zones} (id -> ZoneSpec) and the L{GameData} C{game}
    (None: not cross-checked).

    @return: dict template id -> L{InstanceSpec}.
    @raise InstanceDataError: listing every problem.
    """
    try:
        raw = readDataTOML(path, _Unreadable)
    except _Unreadable as e:
        raise InstanceDataError([str(e).removeprefix(f"{path}: ")], path)
    return parseInstances(raw, zones, game, path)
