"""The [world] config table: which zones to host, the game data, instance templates, leases, saves and transfers."""

import attrs

from mmoshard.config import Field, Problem, nonNegative, positive, readTable
from mmoshard.world.combat.data import GameData
from mmoshard.world.combat.loading import GameDataError, loadGameData
from mmoshard.world.instances.loading import InstanceDataError, loadInstances
from mmoshard.world.interest import nativeAvailable
from mmoshard.world.zones import ZoneDataError, loadZones

ENGINES = ("auto", "native", "python")
DRAIN_MODES = ("handover", "finish")


def oneOf(choices):
    """A Field check: the value is one of C{choices}."""
    return lambda v: None if v in choices else "must be one of " + ", ".join(choices)


WORLD_FIELDS = {
    "zones_file": Field("str", "etc/zones.toml", help="zone game data"),
    "abilities_file": Field("str", "etc/abilities.toml", help="combat abilities and class kits"),
    "npcs_file": Field("str", "etc/npcs.toml", help="NPC types"),
    "items_file": Field("str", "etc/items.toml", help="items"),
    "classes_file": Field("str", "etc/classes.toml", help="character classes (each needs a kit)"),
    "zones": Field("strlist", None, help="zones this process hosts (default: every zone)"),
    "standby": Field("strlist", None, help="zones this process takes over from a draining (or vanished) node"),
    "drain": Field("str", "handover", oneOf(DRAIN_MODES),
                   "on SIGTERM: handover (players move to the zones' other nodes) or finish "
                   "(instances in progress finish first)"),
    "drain_deadline": Field("float", 30.0, positive, "seconds a draining process waits at most"),
    "start_zone": Field("str", "", help="zone of characters never placed (default: first hosted)"),
    "lease_ttl": Field("float", 15.0, positive, "seconds a crashed process keeps its characters"),
    "lease_refresh": Field("float", 5.0, positive, "seconds between lease refreshes"),
    "save_interval": Field("float", 30.0, positive, "seconds between two saves of one position"),
    "transfer_ttl": Field("float", 30.0, positive, "seconds a transfer ticket stays valid"),
    "max_players": Field("int", 5000, positive, "players this process accepts"),
    "interest": Field("str", "auto", oneOf(ENGINES),
                      "world engine (interest space and movement): auto (C when built), native (C, required) or python"),
    # Instances (docs/instances.md).
    "instances_file": Field("str", "etc/instances.toml", help="instance templates (dungeons and raids; \"\": none)"),
    "instances": Field("strlist", None, help="templates this process offers to host (default: every template)"),
    "max_instances": Field("int", 200, positive, "instances this process hosts at most"),
    "instance_timeout": Field("float", 5.0, positive, "seconds an IInstances call waits for an answer"),
    "leave_party_grace": Field("float", 60.0, nonNegative,
                               "seconds a player who left the party may stay in its instance"),
    "test_pause_kill": Field("float", 0.0, nonNegative,
                             "seconds the boss-kill transaction sleeps before its commit (0: off; crash tests only)"),
}


@attrs.frozen
class WorldConfig:
    """The parsed [world] table, with the zone and game data it names."""

    zones_file: str
    abilities_file: str
    npcs_file: str
    items_file: str
    classes_file: str
    zones: tuple | None
    standby: tuple | None
    drain: str
    drain_deadline: float
    start_zone: str
    lease_ttl: float
    lease_refresh: float
    save_interval: float
    transfer_ttl: float
    max_players: int
    interest: str
    instances_file: str
    instances: tuple | None
    max_instances: int
    instance_timeout: float
    leave_party_grace: float
    test_pause_kill: float
    specs: dict = attrs.field(factory=dict)  # every zone in the file, id -> ZoneSpec
    game: GameData | None = None  # the combat game data (None only where built by hand)
    templates: dict = attrs.field(factory=dict)  # every instance template, id -> InstanceSpec

    @property
    def hosted(self):
        """The ids of the zones this process runs (from the start; not its standby zones)."""
        if self.zones:
            return tuple(self.zones)
        standby = self.standby or ()
        return tuple(z for z in self.specs if z not in standby)

    @property
    def offered(self):
        """The ids of the instance templates this process offers to host."""
        return tuple(self.instances) if self.instances else tuple(self.templates)


def validate(values, path, problems):
    """Cross-field checks, and loading the zone and game data files so their errors show at start-up."""
    if values["lease_refresh"] * 2 > values["lease_ttl"]:
        problems.append(Problem(f"{path}.lease_refresh", "must be at most half of lease_ttl"))
    try:
        specs = loadZones(values["zones_file"])
    except ZoneDataError as e:
        problems.append(Problem(f"{path}.zones_file", str(e)))
        specs = {}
    for zid in values["zones"] or ():
        if specs and zid not in specs:
            problems.append(Problem(f"{path}.zones", f"unknown zone {zid!r} (known: {', '.join(sorted(specs))})"))
    for zid in values["standby"] or ():
        if specs and zid not in specs:
            problems.append(Problem(f"{path}.standby", f"unknown zone {zid!r} (known: {', '.join(sorted(specs))})"))
        elif zid in (values["zones"] or ()):
            problems.append(Problem(f"{path}.standby", f"zone {zid!r} is in zones too: hosted or standby, not both"))
    if values["standby"] and specs and not values["zones"] and set(specs) <= set(values["standby"]):
        problems.append(Problem(f"{path}.standby", "every zone is standby: list the zones hosted from the start in zones"))
    start = values["start_zone"]
    if start and specs and start not in specs:
        problems.append(Problem(f"{path}.start_zone", f"unknown zone {start!r}"))
    values["specs"] = specs
    values["game"] = _loadGame(values, path, problems)
    if values["game"] is not None:
        _checkPacks(specs, values["game"], values["zones_file"], path, problems)
    values["templates"] = _loadTemplates(values, path, problems)
    if values["interest"] == "native" and not nativeAvailable():
        problems.append(Problem(f"{path}.interest", "the C world engine is not built here "
                                "(pip install -e . with a C compiler builds it); use auto or python"))


def _loadGame(values, path, problems):
    """@return: the L{GameData} the four files make, or None (their problems appended)."""
    try:
        return loadGameData(values["abilities_file"], values["npcs_file"],
                            values["items_file"], values["classes_file"])
    except GameDataError as e:
        sources = {"abilities": "abilities_file", "npcs": "npcs_file",
                   "items": "items_file", "classes": "classes_file"}
        for which, message in e.problems:
            problems.append(Problem(f"{path}.{sources[which]}", f"{values[sources[which]]}: {message}"))
        return None


def _loadTemplates(values, path, problems):
    """
    @return: the instance templates (id -> InstanceSpec; empty when the
        file has problems, appended), checked with the zones and game data
        (each as far as it loaded).
    """
    if not values["instances_file"]:
        # A deployment without instances (or a test with game data of its own).
        if values["instances"]:
            problems.append(Problem(f"{path}.instances", "no templates: instances_file is \"\""))
        return {}
    try:
        templates = loadInstances(values["instances_file"], values["specs"], values["game"])
    except InstanceDataError as e:
        for message in e.problems:
            problems.append(Problem(f"{path}.instances_file", f"{values['instances_file']}: {message}"))
        return {}
    for tid in values["instances"] or ():
        if tid not in templates:
            problems.append(Problem(f"{path}.instances", f"unknown template {tid!r} "
                                    f"(known: {', '.join(sorted(templates))})"))
    return templates


def _checkPacks(specs, game, zonesFile, path, problems):
    """Every pack member is an NPC type of the game data."""
    for zone in specs.values():
        for i, pack in enumerate(zone.packs):
            for member in sorted(set(pack.members) - set(game.npcs)):
                problems.append(Problem(f"{path}.zones_file", f"{zonesFile}: zones.{zone.id}.packs[{i}].members: "
                                        f"unknown NPC type {member!r}"))


def makeConfig(**values):
    """@return: a L{WorldConfig} from keyword values (defaults for the rest), for tests and tools."""
    problems = []
    # Checked as the [world] table of a config file is.
    full = readTable(values, "world", WORLD_FIELDS, problems)
    validate(full, "world", problems)
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return WorldConfig(**full)
