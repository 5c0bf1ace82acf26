"""Reading the combat game data (abilities, class kits, NPC types, items) from TOML, every problem reported at once."""

import math

import attrs

from mmoshard.paths import readDataTOML
from mmoshard.world.combat.data import (
    ITEM_KINDS, KINDS, MODS, RESOURCES, TARGETS,
    AbilitySpec, ClassKit, GameData, ItemSpec, LootEntry, NpcType,
)
from mmoshard.world.progression import MAX_LEVEL

# Reference of every key: docs/gamedata.md.

ROLES = ("tank", "healer", "damage")
# Abilities that belong to no class: NPC attacks and the effects of consumables.
OTHER_CLASSES = ("npc", "item")
# What each kind of ability may be aimed at.
TARGETS_OF = {
    "damage": ("enemy", "area"),
    "debuff": ("enemy", "area"),
    "taunt": ("enemy", "area"),
    "interrupt": ("enemy",),
    # A helpful area ability hits allies, the caster included (docs/combat.md).
    "heal": ("ally", "self", "area"),
    "shield": ("ally", "self", "area"),
    "buff": ("ally", "self", "area"),
    "resurrect": ("ally",),
}
# Kinds whose effect is an amount (base, per_level, coef); an interrupt may
# deal one too; the others have none.
AMOUNT_KINDS = ("damage", "heal", "shield")
OPTIONAL_AMOUNT_KINDS = ("interrupt",)
# Kinds that last: an aura, a shield, a taunt (damage and heal last with a period).
LASTING_KINDS = ("shield", "buff", "debuff", "taunt")
# Kinds with an optional duration: an interrupt's lockout of the ability it stops.
OPTIONAL_DURATION_KINDS = ("interrupt",)
# Combat records carry health, resource and milliseconds in an int32
# (records.py): the data keeps every such value within it.
MAX_POINTS = 2 ** 31 - 1
# Cast times, cooldowns and durations, in seconds: a day at most.
MAX_SECONDS = 86400.0


class GameDataError(ValueError):
    """
    The game data files are missing or malformed.  C{problems} holds
    (file, message) pairs, file being C{"abilities"}, C{"npcs"}, C{"items"}
    or C{"classes"}; the message lists every one, each after its file's path.
    """

    def __init__(self, problems, sources):
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{sources[which]}: {message}" for which, message in self.problems))


def isNumber(v):
    """True for an int or a finite float (TOML's inf and nan are not numbers here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_TYPES = {
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a finite number", isNumber),
    str: ("a string", lambda v: isinstance(v, str)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
}


def between(lo, hi):
    """A check of L{readScalars}' schema: the value in [lo, hi]."""
    return lambda v: None if lo <= v <= hi else f"must be {lo}..{hi}"


def atLeast(lo):
    """A check: the value C{lo} or more."""
    return lambda v: None if v >= lo else f"must be {lo} or more"


def above(lo):
    """A check: the value greater than C{lo}."""
    return lambda v: None if v > lo else f"must be greater than {lo}"


def oneOf(choices):
    """A check: the value one of C{choices}."""
    return lambda v: None if v in choices else "must be one of " + ", ".join(choices)


def nonEmpty(v):
    """A check: a string that is not blank."""
    return None if v.strip() else "must not be empty"


def readScalars(raw, path, schema, required, problems, others=()):
    """
    Check the scalar keys of the table C{raw} against C{schema} (key ->
    (type, check)); unknown keys (not in C{schema} nor C{others}) and
    missing C{required} keys are problems.  @return: the well-formed values.
    """
    known = set(schema) | set(others)
    for key in raw:
        if key not in known:
            problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
    values = {}
    for key, (kind, check) in schema.items():
        if key not in raw:
            if key in required:
                problems.append(f"{path}.{key}: required")
            continue
        v = raw[key]
        name, ok = _TYPES[kind]
        if not ok(v):
            problems.append(f"{path}.{key}: expected {name}, got {v!r}")
            continue
        v = kind(v)
        error = check(v) if check else None
        if error:
            problems.append(f"{path}.{key}: {error}")
            continue
        values[key] = v
    return values


def _idList(raw, path, key, problems):
    """@return: the list of strings at C{raw[key]} (empty when absent or malformed)."""
    v = raw.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        problems.append(f"{path}.{key}: expected a list of ids, got {v!r}")
        return []
    return v


def _tables(raw, name, problems):
    """@return: the C{[name.<id>]} tables of the document C{raw} as (id, table) pairs."""
    table = raw.get(name, {})
    if not isinstance(table, dict):
        problems.append(f"{name}: expected [{name}.<id>] tables")
        return []
    out = []
    for key, value in table.items():
        if isinstance(value, dict):
            out.append((key, value))
        else:
            problems.append(f"{name}.{key}: expected a table")
    return out


def _topLevel(raw, names, problems):
    for key in raw:
        if key not in names:
            problems.append(f"{key}: unknown table (known: {', '.join(names)})")


# --- abilities -------------------------------------------------------------------

_ABILITY = {
    "num": (int, between(1, 65535)),
    "name": (str, nonEmpty),
    "cls": (str, None),
    "kind": (str, oneOf(KINDS)),
    "target": (str, oneOf(TARGETS)),
    "range": (float, atLeast(0)),
    "radius": (float, atLeast(0)),
    "max_targets": (int, atLeast(1)),
    "cast": (float, between(0, MAX_SECONDS)),
    "cooldown": (float, between(0, MAX_SECONDS)),
    "gcd": (float, between(0, 10)),
    "cost": (int, atLeast(0)),
    "base": (float, atLeast(0)),
    "per_level": (float, atLeast(0)),
    "coef": (float, atLeast(0)),
    "threat": (float, atLeast(0)),
    "crit": (float, between(0, 1)),
    "duration": (float, between(0, MAX_SECONDS)),
    "period": (float, between(0, MAX_SECONDS)),
    "mod": (str, oneOf(MODS)),
    "magnitude": (float, lambda v: None if -1 < v <= 10 and v != 0 else "must be in (-1, 10], not 0"),
    "resurrect": (float, lambda v: None if 0 < v <= 1 else "must be in (0, 1]"),
}
_ABILITY_REQUIRED = ("num", "name", "cls", "kind", "target")
_ABILITY_DEFAULTS = {f.name: f.default for f in attrs.fields(AbilitySpec) if f.default is not attrs.NOTHING}


def _abilityRules(path, kind, target, raw, v, problems):
    """The checks between keys of one ability of a known C{kind} and C{target}."""
    def get(key):
        return v.get(key, _ABILITY_DEFAULTS[key])

    def unused(keys, why):
        for key in keys:
            if key in raw:
                problems.append(f"{path}.{key}: {why}")

    if target is not None and target not in TARGETS_OF[kind]:
        problems.append(f"{path}.target: a {kind} ability targets {' or '.join(TARGETS_OF[kind])}")
    if target == "area":
        if get("radius") <= 0:
            problems.append(f"{path}.radius: an area ability needs a radius greater than 0")
    else:
        unused(("radius", "max_targets"), "only for target = \"area\"")
    if target in ("enemy", "ally") and get("range") <= 0:
        problems.append(f"{path}.range: an ability aimed at an {target} needs a range greater than 0")
    if target == "self":
        unused(("range",), "a self ability has no range")
    if kind in AMOUNT_KINDS:
        if not (get("base") or get("per_level") or get("coef")):
            problems.append(f"{path}: a {kind} ability needs base, per_level or coef greater than 0")
    elif kind not in OPTIONAL_AMOUNT_KINDS:
        unused(("base", "per_level", "coef"), f"unused by kind {kind} (it has no amount)")
    if get("period") > 0:
        if kind not in ("damage", "heal"):
            problems.append(f"{path}.period: only damage and heal abilities tick over time")
        elif get("duration") < get("period"):
            problems.append(f"{path}.duration: an over-time effect lasts at least one period")
    elif kind in LASTING_KINDS:
        if get("duration") <= 0:
            problems.append(f"{path}.duration: a {kind} lasts a duration greater than 0")
    elif kind not in OPTIONAL_DURATION_KINDS:
        unused(("duration",), f"unused by kind {kind}" + (" without a period" if kind in ("damage", "heal") else ""))
    if kind in ("buff", "debuff"):
        for key in ("mod", "magnitude"):
            if key not in raw:
                problems.append(f"{path}.{key}: required for a {kind}")
    else:
        unused(("mod", "magnitude"), "only for buff and debuff")
    if kind == "resurrect":
        if "resurrect" not in raw:
            problems.append(f"{path}.resurrect: required (the fraction of health restored)")
    else:
        unused(("resurrect",), "only for kind resurrect")


def _parseAbility(aid, raw, classIds, problems):
    """@return: an L{AbilitySpec}, or None when it has problems (appended)."""
    path = f"abilities.{aid}"
    before = len(problems)
    v = readScalars(raw, path, _ABILITY, _ABILITY_REQUIRED, problems)
    cls = v.get("cls")
    if cls is not None and cls not in classIds and cls not in OTHER_CLASSES:
        known = ", ".join(sorted(classIds) + list(OTHER_CLASSES))
        problems.append(f"{path}.cls: unknown class {cls!r} (known: {known})")
    if cls in OTHER_CLASSES and v.get("cost", 0):
        problems.append(f"{path}.cost: {cls} abilities cost no resource")
    if "kind" in v:
        _abilityRules(path, v["kind"], v.get("target"), raw, v, problems)
    if len(problems) > before:
        return None
    return AbilitySpec(id=aid, **v)


# --- class kits --------------------------------------------------------------------

_KIT = {
    "resource": (str, oneOf(RESOURCES)),
    "resource_max": (int, between(1, MAX_POINTS)),
    "resource_regen": (float, None),  # negative: it decays (as rage may)
    "resource_start": (int, atLeast(0)),
    "health_base": (int, between(1, MAX_POINTS)),
    "health_per_level": (int, atLeast(0)),
    "power_base": (float, atLeast(0)),
    "power_per_level": (float, atLeast(0)),
}
_KIT_REQUIRED = tuple(k for k in _KIT if k != "resource_start")


def _parseKit(cid, raw, roles, abilities, problems):
    """
    @param roles: class id -> role (None when malformed) of the classes file.
    @param abilities: id -> (cls, cost) of every ability declared.
    @return: a L{ClassKit}, or None when it has problems (appended).
    """
    path = f"classes.{cid}"
    before = len(problems)
    v = readScalars(raw, path, _KIT, _KIT_REQUIRED, problems, others=("abilities",))
    if cid not in roles:
        problems.append(f"{path}: not a class of the classes file")
    resMax = v.get("resource_max")
    start = v.setdefault("resource_start", resMax)
    if resMax is not None and start is not None and start > resMax:
        problems.append(f"{path}.resource_start: must be at most resource_max ({resMax})")
    if "health_base" in v and "health_per_level" in v:
        top = v["health_base"] + v["health_per_level"] * (MAX_LEVEL - 1)
        if top > MAX_POINTS:
            problems.append(f"{path}.health_per_level: health at level {MAX_LEVEL} ({top}) "
                            f"must be at most {MAX_POINTS}")
    ids = _idList(raw, path, "abilities", problems)
    if "abilities" in raw and not ids and isinstance(raw["abilities"], list):
        problems.append(f"{path}.abilities: a kit needs at least one ability")
    elif "abilities" not in raw:
        problems.append(f"{path}.abilities: required")
    for aid in sorted({a for a in ids if ids.count(a) > 1}):
        problems.append(f"{path}.abilities: {aid!r} is listed twice")
    for aid in ids:
        if aid not in abilities:
            problems.append(f"{path}.abilities: unknown ability {aid!r}")
            continue
        cls, cost = abilities[aid]
        if cls is not None and cls != cid:
            problems.append(f"{path}.abilities: {aid!r} is an ability of {cls!r}, not of {cid!r}")
        if resMax is not None and cost is not None and cost > resMax:
            problems.append(f"{path}.abilities: {aid!r} costs {cost}, more than resource_max ({resMax})")
    if len(problems) > before:
        return None
    return ClassKit(cls=cid, role=roles[cid], abilities=tuple(ids), **v)


def _readClasses(raw, problems):
    """@return: class id -> role (None when malformed) from the classes file (the auth role checks the rest)."""
    roles = {}
    for cid, spec in _tables(raw, "classes", problems):
        roles[cid] = spec.get("role")
        if roles[cid] not in ROLES:
            problems.append(f"classes.{cid}.role: must be one of {', '.join(ROLES)}")
    if not roles and not problems:
        problems.append("classes: no [classes.<id>] tables")
    return roles


# --- NPCs -----------------------------------------------------------------------------

_NPC = {
    "name": (str, nonEmpty),
    "level": (int, between(1, MAX_LEVEL)),
    "health": (int, between(1, MAX_POINTS)),
    "attack_speed": (float, above(0)),
    "attack_range": (float, above(0)),
    "speed": (float, above(0)),
    "aggro_radius": (float, atLeast(0)),
    "social_radius": (float, atLeast(0)),
    "leash": (float, above(0)),
    "exp": (int, atLeast(0)),
    "power": (float, atLeast(0)),
}
_NPC_REQUIRED = ("name", "level", "health", "attack_speed")
_NPC_DEFAULTS = {f.name: f.default for f in attrs.fields(NpcType) if f.default is not attrs.NOTHING}
_LOOT = {
    "item": (str, None),
    "chance": (float, lambda v: None if 0 < v <= 1 else "must be in (0, 1]"),
    "min": (int, atLeast(1)),
    "max": (int, atLeast(1)),
}


def parseLoot(path, raw, items, problems):
    """@return: a tuple of L{LootEntry} from the list C{raw}."""
    if not isinstance(raw, list):
        problems.append(f"{path}: expected a list of {{item, chance, min, max}} tables")
        return ()
    loot = []
    for i, line in enumerate(raw):
        lpath = f"{path}[{i}]"
        if not isinstance(line, dict):
            problems.append(f"{lpath}: expected {{item = \"...\", chance = 0.5}}")
            continue
        before = len(problems)
        v = readScalars(line, lpath, _LOOT, ("item", "chance"), problems)
        if "item" in v and v["item"] not in items:
            problems.append(f"{lpath}.item: unknown item {v['item']!r}")
        if v.get("min", 1) > v.get("max", v.get("min", 1)):
            problems.append(f"{lpath}.max: must be at least min")
        if len(problems) == before:
            loot.append(LootEntry(**v))
    return tuple(loot)


def _parseNpc(nid, raw, abilities, items, problems):
    """@return: an L{NpcType}, or None when it has problems (appended)."""
    path = f"npcs.{nid}"
    before = len(problems)
    v = readScalars(raw, path, _NPC, _NPC_REQUIRED, problems, others=("damage", "abilities", "loot"))
    damage = raw.get("damage")
    if damage is None:
        problems.append(f"{path}.damage: required")
    elif not (isinstance(damage, list) and len(damage) == 2 and all(isNumber(x) for x in damage)
              and 0 <= damage[0] <= damage[1] and damage[1] > 0):
        problems.append(f"{path}.damage: expected [min, max] with 0 <= min <= max and max > 0, got {damage!r}")
    ids = _idList(raw, path, "abilities", problems)
    for aid in ids:
        if aid not in abilities:
            problems.append(f"{path}.abilities: unknown ability {aid!r}")
        elif abilities[aid][0] not in (None, "npc"):
            problems.append(f"{path}.abilities: {aid!r} is an ability of {abilities[aid][0]!r}, not of \"npc\"")
    loot = parseLoot(f"{path}.loot", raw.get("loot", []), items, problems)
    leash = v.get("leash", _NPC_DEFAULTS["leash"])
    aggro = v.get("aggro_radius", _NPC_DEFAULTS["aggro_radius"])
    if leash <= aggro:
        problems.append(f"{path}.leash: must be greater than aggro_radius ({aggro})")
    if len(problems) > before:
        return None
    return NpcType(id=nid, damage=(float(damage[0]), float(damage[1])), abilities=tuple(ids), loot=loot, **v)


# --- items ------------------------------------------------------------------------------

_ITEM = {
    "name": (str, nonEmpty),
    "stack": (int, between(1, 1000)),
    "kind": (str, oneOf(ITEM_KINDS)),
    "use": (str, None),
    "cooldown": (float, atLeast(0)),
    "cooldown_group": (str, nonEmpty),
}


def _parseItem(iid, raw, abilities, problems):
    """@return: an L{ItemSpec}, or None when it has problems (appended)."""
    path = f"items.{iid}"
    before = len(problems)
    v = readScalars(raw, path, _ITEM, ("name",), problems)
    kind = v.get("kind", "material")
    if kind == "consumable":
        use = v.get("use")
        if "use" not in raw:
            problems.append(f"{path}.use: required for a consumable (an ability of cls \"item\")")
        elif use is not None and use not in abilities:
            problems.append(f"{path}.use: unknown ability {use!r}")
        elif use is not None and abilities[use][0] not in (None, "item"):
            problems.append(f"{path}.use: {use!r} is an ability of {abilities[use][0]!r}, not of \"item\"")
    elif "kind" in v or "kind" not in raw:
        for key in ("use", "cooldown", "cooldown_group"):
            if key in raw:
                problems.append(f"{path}.{key}: only for a consumable")
    if kind == "equipment" and v.get("stack", 1) != 1:
        problems.append(f"{path}.stack: equipment does not stack (1)")
    if len(problems) > before:
        return None
    # A consumable without a group has a cooldown of its own.
    v.setdefault("cooldown_group", iid)
    return ItemSpec(id=iid, **v)


# --- the whole ------------------------------------------------------------------------------

FILES = ("abilities", "npcs", "items", "classes")


def parseGameData(abilities, npcs, items, classes, sources=None):
    """
    Cross-check the four parsed documents (abilities.toml with its class
    kits, npcs.toml, items.toml, classes.toml).

    @param sources: file key -> the path to name in messages.
    @return: a L{GameData}.
    @raise GameDataError: listing every problem.
    """
    sources = sources or {which: f"{which}.toml" for which in FILES}
    found = {which: [] for which in FILES}
    _topLevel(abilities, ("abilities", "classes"), found["abilities"])
    _topLevel(npcs, ("npcs",), found["npcs"])
    _topLevel(items, ("items",), found["items"])
    roles = _readClasses(classes, found["classes"])

    specs = {}
    declared = {}  # every ability id -> (cls, cost) as written, for cross-references
    nums = {}
    for aid, raw in _tables(abilities, "abilities", found["abilities"]):
        cls, cost = raw.get("cls"), raw.get("cost", 0)
        declared[aid] = (cls if isinstance(cls, str) else None, cost if isNumber(cost) else None)
        num = raw.get("num")
        if isinstance(num, int) and not isinstance(num, bool):
            if num in nums:
                found["abilities"].append(f"abilities.{aid}.num: {num} is also the num of {nums[num]!r}")
            else:
                nums[num] = aid
        spec = _parseAbility(aid, raw, roles, found["abilities"])
        if spec is not None:
            specs[aid] = spec

    kits = {}
    listed = {}  # class id -> the ability ids its kit lists
    for cid, raw in _tables(abilities, "classes", found["abilities"]):
        kit = _parseKit(cid, raw, roles, declared, found["abilities"])
        listed[cid] = raw.get("abilities") if isinstance(raw.get("abilities"), list) else ()
        if kit is not None:
            kits[cid] = kit
    for cid in sorted(set(roles) - set(listed)):
        found["abilities"].append(f"classes.{cid}: no kit for class {cid!r} of {sources['classes']}")
    for aid, (cls, _) in declared.items():
        if cls in listed and aid not in listed[cls]:
            found["abilities"].append(f"abilities.{aid}: an ability of {cls!r} that is not in its kit")

    itemIds = {iid for iid, _ in _tables(items, "items", [])}
    itemSpecs = {}
    for iid, raw in _tables(items, "items", found["items"]):
        item = _parseItem(iid, raw, declared, found["items"])
        if item is not None:
            itemSpecs[iid] = item
    groups = {}
    for item in itemSpecs.values():
        if item.kind == "consumable":
            other = groups.setdefault(item.cooldown_group, item)
            if other.cooldown != item.cooldown:
                found["items"].append(f"items.{item.id}.cooldown: {item.cooldown} differs from {other.cooldown} "
                                      f"of {other.id!r} in cooldown_group {item.cooldown_group!r}")

    npcSpecs = {}
    for nid, raw in _tables(npcs, "npcs", found["npcs"]):
        npc = _parseNpc(nid, raw, declared, itemIds, found["npcs"])
        if npc is not None:
            npcSpecs[nid] = npc

    problems = [(which, message) for which in FILES for message in found[which]]
    if problems:
        raise GameDataError(problems, sources)
    return GameData(abilities=specs, byNum={a.num: a for a in specs.values()}, kits=kits,
                    npcs=npcSpecs, items=itemSpecs)


class _Unreadable(Exception):
    """One file cannot be read or is not TOML (becomes one problem of a L{GameDataError})."""


def loadGameData(abilitiesFile, npcsFile, itemsFile, classesFile):
    """
    Read and cross-check the game data files (see C{etc/abilities.toml},
    C{etc/npcs.toml}, C{etc/items.toml}, C{etc/classes.toml}).

    @raise GameDataError: listing every problem of every file (only the
        read errors when a file cannot be read or is not TOML).
    """
    sources = dict(zip(FILES, (abilitiesFile, npcsFile, itemsFile, classesFile)))
    docs = {}
    unread = []
    for which, path in sources.items():
        try:
            docs[which] = readDataTOML(path, _Unreadable)
        except _Unreadable as e:
            unread.append((which, str(e).removeprefix(f"{path}: ")))
    if unread:
        raise GameDataError(unread, sources)
    return parseGameData(docs["abilities"], docs["npcs"], docs["items"], docs["classes"], sources)
