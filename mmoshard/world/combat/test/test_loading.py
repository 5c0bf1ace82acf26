"""Combat game data: the shipped files load and fit the classes' roles; every mistake is reported at once."""

import os

import attrs
from twisted.trial.unittest import TestCase

from mmoshard.paths import dataPath
from mmoshard.testing import checkoutRoot
from mmoshard.world.combat.data import AbilitySpec, ClassKit, ItemSpec, LootEntry, NpcType, PackSpec
from mmoshard.world.combat.loading import GameDataError, loadGameData, parseGameData
from mmoshard.world.config import WORLD_FIELDS, makeConfig
from mmoshard.world.test.helpers import missedMistakes
from mmoshard.world.zones import loadZones

SHIPPED = ("etc/abilities.toml", "etc/npcs.toml", "etc/items.toml", "etc/classes.toml")


def shipped():
    return loadGameData(*SHIPPED)


def valid():
    """@return: the four documents of a small, valid game data set, to break one thing at a time."""
    abilities = {
        "classes": {
            "fighter": {"resource": "rage", "resource_max": 100, "resource_regen": -1.0, "health_base": 100,
                        "health_per_level": 20, "power_base": 10.0, "power_per_level": 2.0,
                        "abilities": ["strike", "mend", "bash", "rally"]},
        },
        "abilities": {
            "strike": {"num": 1, "name": "Strike", "cls": "fighter", "kind": "damage", "target": "enemy",
                       "range": 5.0, "cost": 10, "base": 10.0},
            "mend": {"num": 2, "name": "Mend", "cls": "fighter", "kind": "heal", "target": "self",
                     "base": 5.0, "duration": 6.0, "period": 2.0},
            "bash": {"num": 6, "name": "Bash", "cls": "fighter", "kind": "interrupt", "target": "enemy",
                     "range": 5.0, "duration": 3.0, "base": 2.0},
            "rally": {"num": 7, "name": "Rally", "cls": "fighter", "kind": "heal", "target": "area",
                      "radius": 10.0, "base": 5.0},
            "bite": {"num": 3, "name": "Bite", "cls": "npc", "kind": "damage", "target": "enemy",
                     "range": 3.0, "cooldown": 5.0, "base": 4.0},
            "drink": {"num": 4, "name": "Drink", "cls": "item", "kind": "heal", "target": "self",
                      "gcd": 0.0, "base": 50.0},
            "rage": {"num": 5, "name": "Rage", "cls": "item", "kind": "buff", "target": "self",
                     "duration": 60.0, "mod": "damage_done", "magnitude": 0.1},
        },
    }
    npcs = {"npcs": {"rat": {"name": "Rat", "level": 1, "health": 50, "damage": [1, 3], "attack_speed": 2.0,
                             "abilities": ["bite"], "loot": [{"item": "tail", "chance": 0.5, "min": 1, "max": 2}]}}}
    items = {"items": {
        "tail": {"name": "Rat Tail", "stack": 20},
        "potion": {"name": "Potion", "kind": "consumable", "stack": 5, "use": "drink", "cooldown": 60.0,
                   "cooldown_group": "potion"},
        "tonic": {"name": "Tonic", "kind": "consumable", "stack": 5, "use": "rage"},
    }}
    classes = {"classes": {"fighter": {"name": "Fighter", "role": "tank"}}}
    return {"abilities": abilities, "npcs": npcs, "items": items, "classes": classes}


def parse(docs):
    return parseGameData(docs["abilities"], docs["npcs"], docs["items"], docs["classes"])


def ability(docs, aid):
    return docs["abilities"]["abilities"][aid]


# Each: (what the mistake is, a function breaking a valid set, a fragment of the message).
MISTAKES = [
    ("unknown key", lambda d: ability(d, "strike").update(colour="red"),
     "abilities.strike.colour: unknown key"),
    ("wrong type", lambda d: ability(d, "strike").update(num="one"),
     "abilities.strike.num: expected an integer, got 'one'"),
    ("out of range", lambda d: ability(d, "strike").update(crit=2.0),
     "abilities.strike.crit: must be 0..1"),
    ("not a finite number", lambda d: ability(d, "strike").update(range=float("inf")),
     "abilities.strike.range: expected a finite number, got inf"),
    ("cast time over a day", lambda d: ability(d, "strike").update(cast=1e7),
     "abilities.strike.cast: must be 0..86400.0"),
    ("health beyond a record at the top level", lambda d: d["abilities"]["classes"]["fighter"].update(
        health_per_level=2 ** 26), "classes.fighter.health_per_level: health at level 60"),
    ("NPC health beyond a record", lambda d: d["npcs"]["npcs"]["rat"].update(health=2 ** 31),
     "npcs.rat.health: must be 1..2147483647"),
    ("missing key", lambda d: ability(d, "strike").pop("kind"),
     "abilities.strike.kind: required"),
    ("unknown kind", lambda d: ability(d, "strike").update(kind="explode"),
     "abilities.strike.kind: must be one of"),
    ("duplicate num", lambda d: ability(d, "mend").update(num=1),
     "abilities.mend.num: 1 is also the num of 'strike'"),
    ("unknown class", lambda d: ability(d, "bite").update(cls="dragon"),
     "abilities.bite.cls: unknown class 'dragon'"),
    ("target unfit for kind", lambda d: ability(d, "mend").update(target="enemy", range=30.0),
     "abilities.mend.target: a heal ability targets ally or self"),
    ("area without radius", lambda d: ability(d, "strike").update(target="area"),
     "abilities.strike.radius: an area ability needs a radius"),
    ("radius without area", lambda d: ability(d, "strike").update(radius=5.0),
     "abilities.strike.radius: only for target = \"area\""),
    ("enemy out of reach", lambda d: ability(d, "strike").pop("range"),
     "abilities.strike.range: an ability aimed at an enemy needs a range"),
    ("no amount", lambda d: ability(d, "strike").pop("base"),
     "abilities.strike: a damage ability needs base, per_level or coef"),
    ("amount unused", lambda d: ability(d, "rage").update(base=5.0),
     "abilities.rage.base: unused by kind buff"),
    ("period longer than duration", lambda d: ability(d, "mend").update(duration=1.0),
     "abilities.mend.duration: an over-time effect lasts at least one period"),
    ("duration without period", lambda d: ability(d, "strike").update(duration=5.0),
     "abilities.strike.duration: unused by kind damage without a period"),
    ("buff without mod", lambda d: ability(d, "rage").pop("mod"),
     "abilities.rage.mod: required for a buff"),
    ("buff without duration", lambda d: ability(d, "rage").pop("duration"),
     "abilities.rage.duration: a buff lasts a duration greater than 0"),
    ("unknown mod", lambda d: ability(d, "rage").update(mod="luck"),
     "abilities.rage.mod: must be one of"),
    ("resurrect without fraction", lambda d: d["abilities"]["abilities"].update(mend={
        "num": 2, "name": "Raise", "cls": "fighter", "kind": "resurrect", "target": "ally", "range": 30.0}),
     "abilities.mend.resurrect: required"),
    ("interrupt over time", lambda d: ability(d, "bash").update(period=1.0),
     "abilities.bash.period: only damage and heal abilities tick over time"),
    ("resurrect in an area", lambda d: d["abilities"]["abilities"].update(rally={
        "num": 7, "name": "Mass Raise", "cls": "fighter", "kind": "resurrect", "target": "area",
        "radius": 10.0, "resurrect": 0.5}),
     "abilities.rally.target: a resurrect ability targets ally"),
    ("NPC ability with a cost", lambda d: ability(d, "bite").update(cost=5),
     "abilities.bite.cost: npc abilities cost no resource"),
    ("kit names an unknown ability", lambda d: d["abilities"]["classes"]["fighter"]["abilities"].append("smash"),
     "classes.fighter.abilities: unknown ability 'smash'"),
    ("kit names an ability of another class", lambda d: d["abilities"]["classes"]["fighter"]["abilities"]
     .append("bite"), "classes.fighter.abilities: 'bite' is an ability of 'npc', not of 'fighter'"),
    ("kit lists an ability twice", lambda d: d["abilities"]["classes"]["fighter"]["abilities"].append("strike"),
     "classes.fighter.abilities: 'strike' is listed twice"),
    ("class ability outside its kit", lambda d: d["abilities"]["classes"]["fighter"]["abilities"].remove("mend"),
     "abilities.mend: an ability of 'fighter' that is not in its kit"),
    ("ability costs more than the resource holds", lambda d: ability(d, "strike").update(cost=150),
     "classes.fighter.abilities: 'strike' costs 150, more than resource_max (100)"),
    ("kit starts over its maximum", lambda d: d["abilities"]["classes"]["fighter"].update(resource_start=200),
     "classes.fighter.resource_start: must be at most resource_max"),
    ("unknown resource", lambda d: d["abilities"]["classes"]["fighter"].update(resource="focus"),
     "classes.fighter.resource: must be one of mana, rage, energy"),
    ("class without a kit", lambda d: d["classes"]["classes"].update(bard={"name": "Bard", "role": "healer"}),
     "classes.bard: no kit for class 'bard'"),
    ("kit of no class", lambda d: d["classes"]["classes"].pop("fighter"),
     "classes.fighter: not a class of the classes file"),
    ("bad class role", lambda d: d["classes"]["classes"]["fighter"].update(role="bard"),
     "classes.fighter.role: must be one of tank, healer, damage"),
    ("unknown top-level table", lambda d: d["abilities"].update(talents={}),
     "talents: unknown table"),
    ("NPC names an unknown ability", lambda d: d["npcs"]["npcs"]["rat"]["abilities"].append("gnaw"),
     "npcs.rat.abilities: unknown ability 'gnaw'"),
    ("NPC names a class ability", lambda d: d["npcs"]["npcs"]["rat"]["abilities"].append("strike"),
     "npcs.rat.abilities: 'strike' is an ability of 'fighter', not of \"npc\""),
    ("NPC loot names an unknown item", lambda d: d["npcs"]["npcs"]["rat"]["loot"].append(
        {"item": "cheese", "chance": 0.1}), "npcs.rat.loot[1].item: unknown item 'cheese'"),
    ("loot chance out of range", lambda d: d["npcs"]["npcs"]["rat"]["loot"][0].update(chance=0),
     "npcs.rat.loot[0].chance: must be in (0, 1]"),
    ("loot max under min", lambda d: d["npcs"]["npcs"]["rat"]["loot"][0].update(min=3),
     "npcs.rat.loot[0].max: must be at least min"),
    ("NPC damage malformed", lambda d: d["npcs"]["npcs"]["rat"].update(damage=[5, 1]),
     "npcs.rat.damage: expected [min, max]"),
    ("NPC level over the maximum", lambda d: d["npcs"]["npcs"]["rat"].update(level=61),
     "npcs.rat.level: must be 1..60"),
    ("NPC leash inside its aggro radius", lambda d: d["npcs"]["npcs"]["rat"].update(leash=5.0),
     "npcs.rat.leash: must be greater than aggro_radius"),
    ("item uses an unknown ability", lambda d: d["items"]["items"]["potion"].update(use="quaff"),
     "items.potion.use: unknown ability 'quaff'"),
    ("item uses an ability not of cls item", lambda d: d["items"]["items"]["potion"].update(use="mend"),
     "items.potion.use: 'mend' is an ability of 'fighter', not of \"item\""),
    ("consumable without a use", lambda d: d["items"]["items"]["potion"].pop("use"),
     "items.potion.use: required for a consumable"),
    ("material with a use", lambda d: d["items"]["items"]["tail"].update(use="drink"),
     "items.tail.use: only for a consumable"),
    ("equipment that stacks", lambda d: d["items"]["items"]["tail"].update(kind="equipment"),
     "items.tail.stack: equipment does not stack"),
    ("one cooldown group, two cooldowns", lambda d: d["items"]["items"]["tonic"].update(cooldown_group="potion"),
     "in cooldown_group 'potion'"),
]
BY_NAME = {what: (breakIt, fragment) for what, breakIt, fragment in MISTAKES}
# Mistakes that do not touch the same keys, made together in one set.
TOGETHER = ("unknown key", "duplicate num", "kit names an unknown ability", "class without a kit",
            "NPC names an unknown ability", "NPC loot names an unknown item", "NPC level over the maximum",
            "item uses an unknown ability", "equipment that stacks")


class ShippedDataTests(TestCase):
    def test_shippedFilesLoad(self):
        """The shipped game data loads, with a kit for each of the seven classes, NPCs and items."""
        game = shipped()
        self.assertEqual(set(game.kits), {"warrior", "paladin", "priest", "druid", "mage", "rogue", "ranger"})
        self.assertEqual({n: a.id for n, a in game.byNum.items()}, {a.num: a.id for a in game.abilities.values()})
        # The open world's NPC types (those of etc/instances.toml come on top).
        placed = {m for zone in loadZones("etc/zones.toml").values() for pack in zone.packs for m in pack.members}
        self.assertLessEqual(placed, set(game.npcs))
        self.assertGreaterEqual(len(placed), 5)
        self.assertLessEqual(len(placed), 8)
        for kit in game.kits.values():
            self.assertTrue(4 <= len(kit.abilities) <= 6, kit.cls)
            self.assertTrue(all(game.abilities[a].cls == kit.cls for a in kit.abilities), kit.cls)
        potion = game.items["minor_healing_potion"]
        self.assertEqual((potion.cooldown, potion.cooldown_group, game.abilities[potion.use].cls),
                         (60.0, "potion", "item"))
        self.assertEqual(game.items["wolf_pelt"].cooldown_group, "wolf_pelt")

    def test_roleConfigHasGameData(self):
        """The world config loads the shipped game data with the default [world] keys."""
        config = makeConfig()
        self.assertEqual(set(config.game.kits), set(shipped().kits))
        self.assertEqual(config.abilities_file, "etc/abilities.toml")

    def test_kitsFitTheirRoles(self):
        """
        Tanks taunt, make extra threat and shrink the damage they take; healers
        heal directly and over time, resurrect and have a weak attack (the priest a
        shield); damage classes hit hard, over time and in an area, and the rogue
        and mage interrupt, the mage with cast times.
        """
        game = shipped()

        def kit(cls):
            return [game.abilities[a] for a in game.kits[cls].abilities]

        for cls in ("warrior", "paladin"):
            self.assertEqual(game.kits[cls].role, "tank")
            k = kit(cls)
            self.assertTrue(any(a.kind == "taunt" for a in k), cls)
            self.assertTrue(any(a.kind == "damage" and a.threat > 1 for a in k), cls)
            self.assertTrue(any(a.kind == "buff" and a.mod == "damage_taken" and a.magnitude < 0 for a in k), cls)
        for cls in ("priest", "druid"):
            self.assertEqual(game.kits[cls].role, "healer")
            k = kit(cls)
            self.assertTrue(any(a.kind == "heal" and a.period == 0 for a in k), cls)
            self.assertTrue(any(a.kind == "heal" and a.period > 0 for a in k), cls)
            self.assertTrue(any(a.kind == "resurrect" for a in k), cls)
            weak = max(a.amount(1, game.kits[cls].power(1)) for a in k if a.kind == "damage" and not a.period)
            self.assertLess(weak, 20, cls)
        self.assertTrue(any(a.kind == "shield" for a in kit("priest")))
        for cls in ("mage", "rogue", "ranger"):
            self.assertEqual(game.kits[cls].role, "damage")
            k = kit(cls)
            self.assertTrue(any(a.kind == "damage" and a.period > 0 for a in k), cls)
            self.assertTrue(any(a.kind == "damage" and a.target == "area" for a in k), cls)
        for cls in ("mage", "rogue"):
            self.assertTrue(any(a.kind == "interrupt" for a in kit(cls)), cls)
        self.assertTrue(any(a.cast > 0 for a in kit("mage")))

    def test_levelOneKill(self):
        """
        A level-1 damage dealer kills a young wolf (level 1, 100 health) with 4 to
        6 abilities, its damage abilities used in bar order (over-time ones counted
        whole).
        """
        game = shipped()
        wolf = game.npcs["young_wolf"]
        self.assertEqual((wolf.level, wolf.health), (1, 100))
        for cls in ("mage", "rogue", "ranger"):
            kit = game.kits[cls]
            damage = [game.abilities[a] for a in kit.abilities if game.abilities[a].kind == "damage"]
            hp, used = wolf.health, 0
            while hp > 0:
                a = damage[used % len(damage)]
                ticks = a.duration / a.period if a.period else 1
                hp -= a.amount(1, kit.power(1)) * ticks
                used += 1
            self.assertTrue(4 <= used <= 6, f"{cls}: {used} abilities")

    def test_amountFormula(self):
        """An ability's amount is base + per_level * (level - 1) + coef * power."""
        fireball = shipped().abilities["fireball"]
        self.assertAlmostEqual(fireball.amount(10, 46.0),
                               fireball.base + fireball.per_level * 9 + fireball.coef * 46.0)
        self.assertAlmostEqual(fireball.amount(1, 0.0), fireball.base)

    def test_classWithoutKit(self):
        """A class of the classes file that has no kit in the abilities file stops the load."""
        with open(dataPath("etc/classes.toml"), "rb") as f:
            classes = f.read()
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(classes + b'\n[classes.bard]\nname = "Bard"\nrole = "healer"\n')
        with self.assertRaises(GameDataError) as e:
            loadGameData(SHIPPED[0], SHIPPED[1], SHIPPED[2], path)
        self.assertEqual(e.exception.problems,
                         (("abilities", f"classes.bard: no kit for class 'bard' of {path}"),))


class MistakeTests(TestCase):
    def test_theValidSetLoads(self):
        """The small set the mistakes start from is valid (so each mistake alone is what fails)."""
        game = parse(valid())
        self.assertEqual(game.kits["fighter"].resource_start, 100)
        # A decaying resource, an interrupt with a lockout and an amount, a heal in an area.
        self.assertEqual(game.kits["fighter"].resource_regen, -1.0)
        self.assertEqual((game.abilities["bash"].duration, game.abilities["bash"].base), (3.0, 2.0))
        self.assertEqual(game.abilities["rally"].target, "area")
        self.assertEqual(game.items["tonic"].cooldown_group, "tonic")
        self.assertEqual(game.npcs["rat"].loot[0].max, 2)

    def test_eachMistakeReported(self):
        """Each kind of mistake is reported, naming where it is."""
        self.assertEqual(missedMistakes(MISTAKES, valid, parse, GameDataError), [])

    def test_mistakesReportedTogether(self):
        """Mistakes in every file come in one error, each after its file's path and under its file."""
        docs = valid()
        for what in TOGETHER:
            BY_NAME[what][0](docs)
        sources = {"abilities": "a.toml", "npcs": "n.toml", "items": "i.toml", "classes": "c.toml"}
        with self.assertRaises(GameDataError) as e:
            parseGameData(docs["abilities"], docs["npcs"], docs["items"], docs["classes"], sources)
        message = str(e.exception)
        for what in TOGETHER:
            self.assertIn(BY_NAME[what][1], message)
        self.assertIn("a.toml: abilities.strike.colour: unknown key", message)
        self.assertIn("n.toml: npcs.rat.abilities: unknown ability 'gnaw'", message)
        self.assertIn("i.toml: items.potion.use: unknown ability 'quaff'", message)
        self.assertEqual(len(e.exception.problems), len(TOGETHER))
        self.assertEqual({which for which, _ in e.exception.problems}, {"abilities", "npcs", "items"})

    def test_unreadableFiles(self):
        """Files that cannot be read or are not TOML are all reported, and nothing else is checked."""
        bad = self.mktemp()
        with open(bad, "w") as f:
            f.write("[npcs\n")
        with self.assertRaises(GameDataError) as e:
            loadGameData("nope/abilities.toml", bad, SHIPPED[2], SHIPPED[3])
        message = str(e.exception)
        self.assertIn("nope/abilities.toml: cannot read", message)
        self.assertIn(f"{bad}: not valid TOML", message)
        self.assertEqual([which for which, _ in e.exception.problems], ["abilities", "npcs"])

    def test_configReportsGameData(self):
        """The world config reports a game data problem at its file's [world] key, with the other problems."""
        npcs = self.mktemp()
        with open(npcs, "w") as f:
            f.write('[npcs.rat]\nname = "Rat"\nlevel = 0\nhealth = 10\ndamage = [1, 2]\nattack_speed = 2.0\n')
        with self.assertRaises(ValueError) as e:
            makeConfig(npcs_file=npcs, start_zone="moon")
        message = str(e.exception)
        self.assertIn(f"world.npcs_file: {npcs}: npcs.rat.level: must be 1..60", message)
        self.assertIn("world.start_zone", message)


class DocsTests(TestCase):
    def test_everyKeyDocumented(self):
        """docs/gamedata.md documents every key of the game data files and of a pack; docs/world.md the [world] keys."""
        with open(os.path.join(checkoutRoot(), "docs", "gamedata.md")) as f:
            text = f.read()
        # The TOML keys are the specs' fields, less the table's id (and a kit's role, from classes.toml).
        for spec in (AbilitySpec, ClassKit, NpcType, LootEntry, ItemSpec, PackSpec):
            for field in attrs.fields(spec):
                if field.name not in ("id", "role") and (spec, field.name) != (ClassKit, "cls"):
                    self.assertIn(f"`{field.name}`", text, spec.__name__)
        for key in ("graveyard", "pvp", "packs", "abilities_file", "npcs_file", "items_file", "classes_file"):
            self.assertIn(f"| `{key}` |", text)
        with open(os.path.join(checkoutRoot(), "docs", "world.md")) as f:
            text = f.read()
        for key in list(WORLD_FIELDS) + ["graveyard", "pvp", "packs"]:
            self.assertIn(f"| `{key}` |", text)
