"""Instance templates as frozen specs (etc/instances.toml): layout, party size, encounters, boss scripts, loot, lockouts, entrance."""

import attrs

from mmoshard.instancewire import Placement  # noqa: F401 (re-exported: the core defines it)

KINDS = ("dungeon", "raid", "arena")
LOCKOUTS = ("daily", "weekly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@attrs.frozen
class TimedAbility:
    """A boss casts C{ability} (an NPC ability id) every C{every} seconds of its phase, first after C{first}."""

    ability: str
    every: float
    first: float = 0.0
    target: str = "top"  # top (of its threat table) | random (a random player on it) | self


@attrs.frozen
class AddSpawn:
    """C{count} NPCs of type C{npc} appear at C{at} ((x, z); None: around the boss) and join the fight."""

    npc: str
    count: int = 1
    at: tuple | None = None


@attrs.frozen
class Phase:
    """
    A boss phase: it starts when the boss's health falls to C{below} (a
    fraction; the first phase has 1.0), casts its C{abilities} on their
    timers and brings its C{adds} once when it starts.
    """

    below: float
    abilities: tuple = ()  # TimedAbility
    adds: tuple = ()  # AddSpawn


@attrs.frozen
class BossSpec:
    """
    One boss encounter: NPC type C{npc} at C{at} (x, z); its C{phases} in
    order; after C{enrage} seconds of fighting (0: never) it enrages (its
    damage multiplied by C{enrage_damage}); its kill grants C{exp} to each
    character present and rolls C{loot} (LootEntry) for each.
    """

    id: str
    npc: str
    at: tuple
    phases: tuple  # Phase, the first with below == 1.0
    loot: tuple = ()
    exp: int = 0
    enrage: float = 0.0
    enrage_damage: float = 3.0


@attrs.frozen
class Entrance:
    """The portal into the template in an open-world zone: C{rect} in C{zone}; players come out at C{arrive}."""

    zone: str
    rect: object  # mmoshard.world.zones.Rect
    arrive: tuple  # (x, y, z) in C{zone}


@attrs.frozen
class InstanceSpec:
    """
    A template: C{layout} is a L{mmoshard.world.zones.ZoneSpec} (its id the
    template's; an instance's zone gets id C{"<template>/<n>"}), whose first
    spawn point is where players enter and whose C{exit} rectangle takes
    them back out; trash C{packs} (PackSpec, never respawning) and
    C{bosses}; C{party_size} players at most; lockouts reset C{lockout}
    (daily or weekly on C{reset_day}) at C{reset_hour} UTC; an instance
    closes after C{empty_timeout} seconds without players or C{max_duration}
    seconds in all.  An C{arena} (kind) is played team against team by a
    matchmade roster: its teams start at the layout's first and second
    spawn points; a team all out loses, and after C{match_duration}
    seconds it is a draw; nobody who has not arrived C{start_grace} seconds
    after the copy opened is waited for; the copy closes C{close_delay}
    seconds after the result is told (docs/matchmaking.md, "Arenas").
    """

    id: str
    name: str
    kind: str  # dungeon | raid | arena
    party_size: int
    layout: object  # ZoneSpec
    exit: object  # Rect in the layout
    entrance: Entrance | None
    bosses: tuple  # BossSpec
    packs: tuple = ()
    lockout: str = "daily"
    reset_hour: int = 9
    reset_day: str = "tue"
    empty_timeout: float = 300.0
    max_duration: float = 14400.0
    match_duration: float = 300.0
    start_grace: float = 30.0
    close_delay: float = 15.0

    @property
    def arena(self):
        """True for a template played team against team."""
        return self.kind == "arena"
