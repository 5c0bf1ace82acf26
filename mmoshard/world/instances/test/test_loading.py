"""Instance templates: the shipped etc/instances.toml loads and is tuned; every mistake is reported, all at once."""

import copy
import functools
import os

import attrs
from twisted.trial.unittest import TestCase

from mmoshard.testing import checkoutRoot

from mmoshard.world.combat.loading import loadGameData
from mmoshard.world.instances.data import AddSpawn, BossSpec, Entrance, InstanceSpec, Phase, TimedAbility
from mmoshard.world.instances.loading import InstanceDataError, loadInstances, parseInstances
from mmoshard.world.test.helpers import missedMistakes
from mmoshard.world.zones import loadZones

GAME = ("etc/abilities.toml", "etc/npcs.toml", "etc/items.toml", "etc/classes.toml")


@functools.cache
def context():
    """@return: the shipped open-world zones and game data, which templates are checked against."""
    return loadZones("etc/zones.toml"), loadGameData(*GAME)


def shipped():
    return loadInstances("etc/instances.toml", *context())


def valid():
    """@return: a small valid instances document (open-world NPCs and items), to break one thing at a time."""
    return {"instances": {"crypt": {
        "name": "The Crypt",
        "kind": "dungeon",
        "party_size": 5,
        "lockout": "weekly",
        "reset_day": "wed",
        "reset_hour": 4,
        "exit": [0.0, 0.0, 10.0, 4.0],
        # A wall across the middle: (20, 105) is on it.
        "layout": {"size": [100.0, 200.0], "spawns": [[50.0, 0.0, 10.0]], "blocked": [[0.0, 100.0, 40.0, 110.0]]},
        "entrance": {"zone": "greenvale", "rect": [500.0, 900.0, 508.0, 908.0], "arrive": [504.0, 0.0, 890.0]},
        "packs": [{"members": ["grey_wolf", "grey_wolf"], "at": [50.0, 60.0], "spread": 3.0}],
        "bosses": [{
            "id": "lich",
            "npc": "bandit_chieftain",
            "at": [50.0, 150.0],
            "exp": 100,
            "enrage": 120.0,
            "loot": [{"item": "wolf_pelt", "chance": 1.0}],
            "phases": [
                {"below": 1.0, "abilities": [{"ability": "rend_flesh", "every": 10.0, "first": 2.0}]},
                {"below": 0.4,
                 "abilities": [{"ability": "enrage", "every": 30.0, "target": "self"},
                               {"ability": "cleave", "every": 8.0, "target": "random"}],
                 "adds": [{"npc": "young_wolf", "count": 2, "at": [60.0, 150.0]}, {"npc": "young_wolf"}]},
            ],
        }],
    }}}


def parse(doc):
    return parseInstances(doc, *context(), source="i.toml")


def crypt(doc):
    return doc["instances"]["crypt"]


def boss(doc):
    return crypt(doc)["bosses"][0]


def phase(doc, i):
    return boss(doc)["phases"][i]


def rename(doc, new):
    doc["instances"][new] = doc["instances"].pop("crypt")


def twin(doc):
    """A second template with the same entrance as the first."""
    doc["instances"]["crypt2"] = copy.deepcopy(crypt(doc))


# Each: (what the mistake is, a function breaking a valid document, a fragment of the message).
MISTAKES = [
    ("unknown table", lambda d: d.update(dungeons={}), "dungeons: unknown table (known: instances)"),
    ("template not a table", lambda d: d["instances"].update(tomb=3), "instances.tomb: expected a table"),
    ("unknown key", lambda d: crypt(d).update(colour="red"), "instances.crypt.colour: unknown key"),
    ("missing party size", lambda d: crypt(d).pop("party_size"), "instances.crypt.party_size: required"),
    ("party too large", lambda d: crypt(d).update(party_size=41), "instances.crypt.party_size: must be 1..40"),
    ("party empty", lambda d: crypt(d).update(party_size=0), "instances.crypt.party_size: must be 1..40"),
    ("unknown kind", lambda d: crypt(d).update(kind="battleground"),
     "instances.crypt.kind: must be one of dungeon, raid, arena"),
    ("unknown lockout", lambda d: crypt(d).update(lockout="monthly"),
     "instances.crypt.lockout: must be one of daily, weekly"),
    ("reset hour past the day", lambda d: crypt(d).update(reset_hour=24),
     "instances.crypt.reset_hour: must be 0..23"),
    ("reset hour negative", lambda d: crypt(d).update(reset_hour=-1),
     "instances.crypt.reset_hour: must be 0..23"),
    ("reset day not a weekday", lambda d: crypt(d).update(reset_day="friday"),
     "instances.crypt.reset_day: must be one of mon, tue, wed, thu, fri, sat, sun"),
    ("no empty timeout", lambda d: crypt(d).update(empty_timeout=0),
     "instances.crypt.empty_timeout: must be greater than 0"),
    ("duration not a number", lambda d: crypt(d).update(max_duration="long"),
     "instances.crypt.max_duration: expected a finite number, got 'long'"),
    ("template id with a slash", lambda d: rename(d, "crypt/1"),
     "instances.crypt/1: a template id is lower-case letters, digits and _"),
    ("template id of a zone", lambda d: rename(d, "ashfall"),
     "instances.ashfall: 'ashfall' is also an open-world zone"),
    ("no layout", lambda d: crypt(d).pop("layout"), "instances.crypt.layout: required"),
    ("layout malformed", lambda d: crypt(d)["layout"].update(size=[0.0, 10.0]),
     "instances.crypt.layout.size: expected [width, depth] in metres, both > 0"),
    ("layout with portals", lambda d: crypt(d)["layout"].update(portals=[]),
     "instances.crypt.layout.portals: an instance layout has no portals"),
    ("layout with packs", lambda d: crypt(d)["layout"].update(packs=[]),
     "instances.crypt.layout.packs: an instance's packs are the template's"),
    ("spawn on blocked terrain", lambda d: crypt(d)["layout"].update(spawns=[[20.0, 0.0, 105.0]]),
     "instances.crypt.layout.spawns[0]: (20, 105) is on blocked terrain"),
    ("no exit", lambda d: crypt(d).pop("exit"), "instances.crypt.exit: required"),
    ("exit malformed", lambda d: crypt(d).update(exit=[10.0, 0.0, 0.0, 4.0]),
     "instances.crypt.exit: expected [x0, z0, x1, z1] with x0<=x1, z0<=z1"),
    ("exit outside the layout", lambda d: crypt(d).update(exit=[90.0, 0.0, 110.0, 4.0]),
     "instances.crypt.exit: [90.0, 0.0, 110.0, 4.0] is not inside the layout"),
    ("exit on the entry point", lambda d: crypt(d).update(exit=[40.0, 0.0, 60.0, 20.0]),
     "instances.crypt.exit: contains the layout's first spawn point"),
    ("entrance not a table", lambda d: crypt(d).update(entrance="greenvale"),
     "instances.crypt.entrance: expected {zone"),
    ("entrance in an unknown zone", lambda d: crypt(d)["entrance"].update(zone="atlantis"),
     "instances.crypt.entrance.zone: unknown zone 'atlantis' (known: ashfall, greenvale)"),
    ("entrance rect malformed", lambda d: crypt(d)["entrance"].update(rect=[1.0, 2.0]),
     "instances.crypt.entrance.rect: expected [x0, z0, x1, z1]"),
    ("entrance rect outside its zone", lambda d: crypt(d)["entrance"].update(rect=[1020.0, 900.0, 1030.0, 908.0]),
     "instances.crypt.entrance.rect: [1020.0, 900.0, 1030.0, 908.0] is not inside greenvale"),
    ("entrance on a zone portal", lambda d: crypt(d)["entrance"].update(rect=[1004.0, 504.0, 1010.0, 510.0]),
     "instances.crypt.entrance.rect: overlaps the portal of greenvale to ashfall"),
    ("arrival malformed", lambda d: crypt(d)["entrance"].update(arrive=[1.0, 2.0]),
     "instances.crypt.entrance.arrive: expected [x, y, z]"),
    ("arrival outside its zone", lambda d: crypt(d)["entrance"].update(arrive=[2000.0, 0.0, 10.0]),
     "instances.crypt.entrance.arrive: (2000, 10) is outside the zone"),
    ("arrival on blocked terrain", lambda d: crypt(d)["entrance"].update(arrive=[320.0, 0.0, 310.0]),
     "instances.crypt.entrance.arrive: (320, 310) is on blocked terrain"),
    ("arrival in the entrance", lambda d: crypt(d)["entrance"].update(arrive=[504.0, 0.0, 904.0]),
     "instances.crypt.entrance.arrive: inside the entrance's own rect"),
    ("arrival in a zone portal", lambda d: crypt(d)["entrance"].update(arrive=[1010.0, 0.0, 510.0]),
     "instances.crypt.entrance.arrive: inside the portal of greenvale to ashfall"),
    ("two entrances on one spot", twin, "instances.crypt2.entrance.rect: overlaps the entrance of crypt"),
    ("no bosses", lambda d: crypt(d).pop("bosses"), "instances.crypt.bosses: required"),
    ("empty bosses", lambda d: crypt(d).update(bosses=[]), "instances.crypt.bosses: required"),
    ("bosses not tables", lambda d: crypt(d).update(bosses=["lich"]),
     "instances.crypt.bosses: expected a list of tables"),
    ("boss id twice", lambda d: crypt(d)["bosses"].append(copy.deepcopy(boss(d))),
     "instances.crypt.bosses: boss id 'lich' is used twice"),
    ("boss id with a separator", lambda d: boss(d).update(id="lich:king"),
     "instances.crypt.bosses[0].id: must be lower-case letters, digits and _"),
    ("boss without NPC type", lambda d: boss(d).pop("npc"), "instances.crypt.bosses[0].npc: required"),
    ("boss of an unknown NPC type", lambda d: boss(d).update(npc="dragon"),
     "instances.crypt.bosses[0].npc: unknown NPC type 'dragon'"),
    ("boss place malformed", lambda d: boss(d).update(at=[1.0]), "instances.crypt.bosses[0].at: expected [x, z]"),
    ("boss outside the layout", lambda d: boss(d).update(at=[150.0, 150.0]),
     "instances.crypt.bosses[0].at: (150, 150) is outside the zone"),
    ("boss on blocked terrain", lambda d: boss(d).update(at=[20.0, 105.0]),
     "instances.crypt.bosses[0].at: (20, 105) is on blocked terrain"),
    ("negative exp", lambda d: boss(d).update(exp=-1), "instances.crypt.bosses[0].exp: must be 0 or more"),
    ("negative enrage", lambda d: boss(d).update(enrage=-5.0),
     "instances.crypt.bosses[0].enrage: must be 0 or more"),
    ("no enrage damage", lambda d: boss(d).update(enrage_damage=0.0),
     "instances.crypt.bosses[0].enrage_damage: must be greater than 0"),
    ("loot of an unknown item", lambda d: boss(d)["loot"][0].update(item="crown"),
     "instances.crypt.bosses[0].loot[0].item: unknown item 'crown'"),
    ("loot chance over 1", lambda d: boss(d)["loot"][0].update(chance=2.0),
     "instances.crypt.bosses[0].loot[0].chance: must be in (0, 1]"),
    ("no phases", lambda d: boss(d).pop("phases"), "instances.crypt.bosses[0].phases: required"),
    ("empty phases", lambda d: boss(d).update(phases=[]), "instances.crypt.bosses[0].phases: required"),
    ("first phase not at full health", lambda d: phase(d, 0).update(below=0.9),
     "instances.crypt.bosses[0].phases[0].below: the first phase starts at 1.0, got 0.9"),
    ("phases out of order", lambda d: phase(d, 1).update(below=1.0),
     "instances.crypt.bosses[0].phases: below must fall from phase to phase (1, then 1)"),
    ("phase threshold at 0", lambda d: phase(d, 1).update(below=0.0),
     "instances.crypt.bosses[0].phases[1].below: must be in (0, 1]"),
    ("phase unknown key", lambda d: phase(d, 1).update(heal=True),
     "instances.crypt.bosses[0].phases[1].heal: unknown key"),
    ("timed ability unknown", lambda d: phase(d, 0)["abilities"][0].update(ability="doom"),
     "instances.crypt.bosses[0].phases[0].abilities[0].ability: unknown ability 'doom'"),
    ("timed ability of a class", lambda d: phase(d, 0)["abilities"][0].update(ability="fireball"),
     "instances.crypt.bosses[0].phases[0].abilities[0].ability: 'fireball' is an ability of 'mage', not of \"npc\""),
    ("timed ability never cast", lambda d: phase(d, 0)["abilities"][0].update(every=0.0),
     "instances.crypt.bosses[0].phases[0].abilities[0].every: must be greater than 0"),
    ("timed ability without period", lambda d: phase(d, 0)["abilities"][0].pop("every"),
     "instances.crypt.bosses[0].phases[0].abilities[0].every: required"),
    ("timed ability at an unknown target", lambda d: phase(d, 0)["abilities"][0].update(target="nearest"),
     "instances.crypt.bosses[0].phases[0].abilities[0].target: must be one of top, random, self"),
    ("self ability at a player", lambda d: phase(d, 1)["abilities"][0].update(target="top"),
     "instances.crypt.bosses[0].phases[1].abilities[0].target: 'enrage' is cast on its caster"),
    ("enemy ability at the boss", lambda d: phase(d, 0)["abilities"][0].update(target="self"),
     "instances.crypt.bosses[0].phases[0].abilities[0].target: 'rend_flesh' is aimed at an enemy"),
    ("add of an unknown NPC type", lambda d: phase(d, 1)["adds"][0].update(npc="ghoul"),
     "instances.crypt.bosses[0].phases[1].adds[0].npc: unknown NPC type 'ghoul'"),
    ("no adds", lambda d: phase(d, 1)["adds"][0].update(count=0),
     "instances.crypt.bosses[0].phases[1].adds[0].count: must be 1..40"),
    ("add on blocked terrain", lambda d: phase(d, 1)["adds"][0].update(at=[20.0, 105.0]),
     "instances.crypt.bosses[0].phases[1].adds[0].at: (20, 105) is on blocked terrain"),
    ("add place malformed", lambda d: phase(d, 1)["adds"][0].update(at=[1.0, 2.0, 3.0]),
     "instances.crypt.bosses[0].phases[1].adds[0].at: expected [x, z]"),
    ("pack of an unknown NPC type", lambda d: crypt(d)["packs"][0].update(members=["ghoul"]),
     "instances.crypt.packs[0].members: unknown NPC type 'ghoul'"),
    ("pack that respawns", lambda d: crypt(d)["packs"][0].update(respawn=30.0),
     "instances.crypt.packs[0].respawn: an instance's packs never respawn"),
    ("pack on blocked terrain", lambda d: crypt(d)["packs"][0].update(at=[20.0, 105.0]),
     "instances.crypt.packs[0].at: (20, 105) is on blocked terrain"),
]
BY_NAME = {what: (breakIt, fragment) for what, breakIt, fragment in MISTAKES}
# Mistakes on different keys, each making one problem, made together.
TOGETHER = ("unknown key", "reset hour past the day", "exit outside the layout", "entrance in an unknown zone",
            "boss of an unknown NPC type", "timed ability unknown", "no adds", "loot of an unknown item",
            "pack that respawns", "spawn on blocked terrain")


class ShippedTests(TestCase):
    def test_shippedFileLoads(self):
        """etc/instances.toml loads: a 5-player dungeon with two bosses and a 10-player raid, each entered from greenvale (and the arena, tests of its own)."""
        templates = shipped()
        self.assertEqual(set(templates), {"deadmines", "emberforge", "arena"})
        del templates["arena"]
        dungeon, raid = templates["deadmines"], templates["emberforge"]
        self.assertIsInstance(dungeon, InstanceSpec)
        self.assertEqual((dungeon.kind, dungeon.party_size, len(dungeon.bosses)), ("dungeon", 5, 2))
        self.assertEqual((raid.kind, raid.party_size), ("raid", 10))
        self.assertGreaterEqual(len(raid.bosses), 2)
        for template in templates.values():
            self.assertEqual(template.layout.id, template.id)
            self.assertEqual((template.layout.portals, template.layout.packs), ((), ()))
            self.assertEqual(template.entrance.zone, "greenvale")
            self.assertTrue(template.packs)
            for b in template.bosses:
                self.assertEqual(b.phases[0].below, 1.0)
                self.assertGreater(b.exp, 0)
        self.assertEqual((dungeon.lockout, raid.lockout, raid.reset_day), ("daily", "weekly", "tue"))

    def test_shippedBossScripts(self):
        """The dungeon's first boss has two phases and adds, its second an enrage timer; the raid has phases, adds and enrages."""
        dungeon, raid = shipped()["deadmines"], shipped()["emberforge"]
        first, second = dungeon.bosses
        self.assertEqual(len(first.phases), 2)
        self.assertTrue(first.phases[1].adds)
        self.assertGreater(second.enrage, 0)
        self.assertTrue(all(b.enrage > 0 for b in raid.bosses))
        self.assertTrue(all(len(b.phases) >= 2 for b in raid.bosses))
        self.assertTrue(any(ph.adds for b in raid.bosses for ph in b.phases))

    def test_everyBossDropsAMark(self):
        """Each boss drops one mark of its template for sure, so a character's marks count the kills it was rewarded for."""
        game = context()[1]
        for template in shipped().values():
            if template.arena:
                continue  # no bosses
            marks = {line.item for b in template.bosses for line in b.loot
                     if line.chance == 1.0 and (line.min, line.max) == (1, 1) and line.item.endswith("_mark")}
            self.assertEqual(len(marks), 1, template.id)
            self.assertEqual(game.items[marks.pop()].kind, "material")

    def test_firstBossTakesAboutTwoMinutes(self):
        """
        A party of five at level 10 (a warrior, a priest who only heals, a
        mage, a rogue and a ranger, each using its best affordable damage
        ability as its resource and cooldowns allow) kills the dungeon's first
        boss and its adds in 1.5 to 2.5 minutes, and the second boss before it
        enrages.
        """
        zones, game = context()
        dungeon = shipped()["deadmines"]
        dps = sum(sustainedDamage(game, game.kits[cls], 10, 150.0) for cls in ("warrior", "mage", "rogue", "ranger"))
        first, second = dungeon.bosses

        def toughness(b):
            adds = sum(game.npcs[a.npc].health * a.count for ph in b.phases for a in ph.adds)
            return game.npcs[b.npc].health + adds

        self.assertTrue(90 <= toughness(first) / dps <= 150, toughness(first) / dps)
        self.assertLess(toughness(second) / dps, second.enrage * 0.8)

    def test_raidBossesBeforeEnrage(self):
        """
        Ten players at level 12 (two warriors, two healers, two each of mage,
        rogue and ranger) kill each raid boss and its adds in 2 to 4 minutes,
        well before it enrages.
        """
        game = context()[1]
        dps = sum(2 * sustainedDamage(game, game.kits[cls], 12, 300.0)
                  for cls in ("warrior", "mage", "rogue", "ranger"))
        for b in shipped()["emberforge"].bosses:
            seconds = (game.npcs[b.npc].health + sum(game.npcs[a.npc].health * a.count
                                                     for ph in b.phases for a in ph.adds)) / dps
            self.assertTrue(120 <= seconds <= 240, (b.id, seconds))
            self.assertLess(seconds, b.enrage * 0.8, b.id)


def sustainedDamage(game, kit, level, seconds):
    """
    @return: the damage per second a class deals over C{seconds}, casting
        (in 0.1 s steps) the damage ability of its kit with the highest
        amount that is off cooldown and affordable, honouring cast times,
        the global cooldown and resource regeneration (over-time effects
        counted whole, recast when they run out; crits on average).
    """
    abilities = [game.abilities[a] for a in kit.abilities if game.abilities[a].kind == "damage"]
    power = kit.power(level)
    resource = float(kit.resource_start)
    ready = {a.id: 0.0 for a in abilities}
    busy, done, t, step = 0.0, 0.0, 0.0, 0.1
    while t < seconds:
        resource = min(kit.resource_max, resource + kit.resource_regen * step)
        if t >= busy:
            usable = [a for a in abilities if ready[a.id] <= t and a.cost <= resource]
            if usable:
                def total(a):
                    return a.amount(level, power) * (a.duration / a.period if a.period else 1) * (1 + a.crit / 2)
                a = max(usable, key=total)
                resource -= a.cost
                done += total(a)
                busy = t + max(a.gcd, a.cast)
                ready[a.id] = t + max(a.cooldown, a.duration if a.period else 0.0, a.cast)
        t += step
    return done / seconds


class MistakeTests(TestCase):
    def test_theValidDocumentLoads(self):
        """The small document the mistakes start from is valid (so each mistake alone is what fails)."""
        spec = parse(valid())["crypt"]
        self.assertEqual((spec.lockout, spec.reset_day, spec.reset_hour), ("weekly", "wed", 4))
        self.assertEqual(spec.layout.id, "crypt")
        self.assertEqual(spec.exit.x1, 10.0)
        self.assertEqual(spec.entrance.arrive, (504.0, 0.0, 890.0))
        self.assertEqual(spec.packs[0].members, ("grey_wolf", "grey_wolf"))
        lich = spec.bosses[0]
        self.assertEqual((lich.id, lich.npc, lich.at, lich.exp, lich.enrage, lich.enrage_damage),
                         ("lich", "bandit_chieftain", (50.0, 150.0), 100, 120.0, 3.0))
        self.assertEqual([ph.below for ph in lich.phases], [1.0, 0.4])
        self.assertEqual(lich.phases[0].abilities[0].target, "top")
        self.assertEqual(lich.phases[1].adds[0].at, (60.0, 150.0))
        self.assertEqual((lich.phases[1].adds[1].count, lich.phases[1].adds[1].at), (1, None))
        self.assertEqual(lich.loot[0].item, "wolf_pelt")
        # Defaults: an instance without an entrance; a daily lockout at 09:00.
        doc = valid()
        for key in ("entrance", "lockout", "reset_day", "reset_hour"):
            crypt(doc).pop(key)
        spec = parse(doc)["crypt"]
        self.assertEqual((spec.entrance, spec.lockout, spec.reset_hour), (None, "daily", 9))

    def test_eachMistakeReported(self):
        """Each kind of mistake is reported, naming where it is."""
        self.assertEqual(missedMistakes(MISTAKES, valid, parse, InstanceDataError), [])

    def test_mistakesReportedTogether(self):
        """Mistakes all over a template come in one error, one problem each, after the file's name."""
        doc = valid()
        for what in TOGETHER:
            BY_NAME[what][0](doc)
        with self.assertRaises(InstanceDataError) as e:
            parse(doc)
        for what in TOGETHER:
            self.assertIn(BY_NAME[what][1], str(e.exception))
        self.assertEqual(len(e.exception.problems), len(TOGETHER))
        self.assertTrue(str(e.exception).startswith("i.toml: "))

    def test_withoutGameData(self):
        """When the game data did not load, templates are checked for their form only (no NPC, ability or item names)."""
        doc = valid()
        boss(doc).update(npc="dragon", exp=-1)
        phase(doc, 0)["abilities"][0].update(ability="doom")
        boss(doc)["loot"][0].update(item="crown")
        with self.assertRaises(InstanceDataError) as e:
            parseInstances(doc, context()[0], None)
        self.assertEqual(e.exception.problems, ("instances.crypt.bosses[0].exp: must be 0 or more",))
        boss(doc)["exp"] = 1
        self.assertEqual(parseInstances(doc, context()[0], None)["crypt"].bosses[0].npc, "dragon")

    def test_withoutZones(self):
        """When the zones did not load, an entrance is checked for its form only."""
        doc = valid()
        crypt(doc)["entrance"].update(zone="atlantis")
        self.assertEqual(parseInstances(doc, {}, context()[1])["crypt"].entrance.zone, "atlantis")


class FileTests(TestCase):
    def test_unreadableFile(self):
        """A missing file is one problem naming it."""
        with self.assertRaises(InstanceDataError) as e:
            loadInstances("nope/instances.toml", *context())
        self.assertEqual(len(e.exception.problems), 1)
        self.assertIn("nope/instances.toml: cannot read", str(e.exception))

    def test_notTOML(self):
        """A file that is not TOML is one problem naming it."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[instances.crypt\n")
        with self.assertRaises(InstanceDataError) as e:
            loadInstances(path, *context())
        self.assertIn(f"{path}: not valid TOML", str(e.exception))

    def test_problemsNameTheFile(self):
        """The problems of a file on disk come after its path."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[instances.crypt]\nname = "The Crypt"\nkind = "dungeon"\n')
        with self.assertRaises(InstanceDataError) as e:
            loadInstances(path, *context())
        message = str(e.exception)
        self.assertTrue(message.startswith(f"{path}: "), message)
        for key in ("party_size", "layout", "exit", "bosses"):
            self.assertIn(f"instances.crypt.{key}: required", message)


class DocsTests(TestCase):
    def test_everyKeyDocumented(self):
        """docs/instances.md documents every key of a template, its entrance, bosses, phases, timed abilities and adds."""
        with open(os.path.join(checkoutRoot(), "docs", "instances.md")) as f:
            text = f.read()
        for spec in (InstanceSpec, Entrance, BossSpec, Phase, TimedAbility, AddSpawn):
            for field in attrs.fields(spec):
                if (spec, field.name) != (InstanceSpec, "id"):
                    self.assertIn(f"`{field.name}`", text, spec.__name__)
        for template in shipped():
            self.assertIn(f"`{template}`", text)
