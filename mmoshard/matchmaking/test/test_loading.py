"""Queues: the shipped etc/queues.toml loads as the issue asks; every mistake in a queues file is reported, all at once."""

import copy
import os
import tempfile

from twisted.trial.unittest import TestCase

from mmoshard.config import ConfigError
from mmoshard.matchmaking.data import QueueSpec
from mmoshard.matchmaking.loading import QueueDataError, loadClassRoles, loadQueues, parseQueues
from mmoshard.paths import readDataTOML

CLASSES = {"warrior": "tank", "priest": "healer", "mage": "damage"}


class Template:
    """Stands for an instance template spec: only its party size matters here."""

    def __init__(self, party_size):
        self.party_size = party_size


TEMPLATES = {"crypt": Template(5), "pit": Template(4)}

VALID = {"queues": {
    "crypt5": {"title": "The Crypt", "template": "crypt", "teams": 1, "team_size": 5,
               "quotas": {"tank": 1, "healer": 1, "damage": 3}, "ready_timeout": 20,
               "starvation_s": 90},
    "pit2v2": {"template": "pit", "teams": 2, "team_size": 2, "rated": True,
               "window_start": 50, "window_widen": 5, "window_cap": 400},
}}


def valid():
    return copy.deepcopy(VALID)


def parse(doc):
    return parseQueues(doc, TEMPLATES, CLASSES, "q.toml")


def _set(path, value):
    def breakIt(doc):
        table = doc
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value
    return breakIt


def _drop(path):
    def breakIt(doc):
        table = doc
        for key in path[:-1]:
            table = table[key]
        del table[path[-1]]
    return breakIt


C = ("queues", "crypt5")
P = ("queues", "pit2v2")
MISTAKES = [
    ("unknown top table", _set(("rewards",), {}), "rewards: unknown table"),
    ("queues not tables", lambda d: d.update(queues=3), "queues: expected [queues.<id>] tables"),
    ("a queue not a table", _set(("queues", "x"), 3), "queues.x: expected a table"),
    ("bad id", _set(("queues", "Bad-Id"), {"template": "crypt"}), "queues.Bad-Id: a queue id is"),
    ("unknown key", _set(C + ("colour",), "red"), "queues.crypt5.colour: unknown key"),
    ("no template", _drop(C + ("template",)), "queues.crypt5.template: required"),
    ("unknown template", _set(C + ("template",), "moon"), "queues.crypt5.template: unknown instance template 'moon'"),
    ("teams 3", _set(C + ("teams",), 3), "queues.crypt5.teams: must be 1 or 2"),
    ("team_size text", _set(C + ("team_size",), "five"), "queues.crypt5.team_size: expected an integer"),
    ("team_size 0", _set(C + ("team_size",), 0), "queues.crypt5.team_size: must be 1..40"),
    ("quotas sum", _set(C + ("quotas", "damage"), 2), "queues.crypt5.quotas: the counts add up to 4, not team_size (5)"),
    ("quota role", _set(C + ("quotas", "bard"), 1), "queues.crypt5.quotas.bard: unknown role"),
    ("quota count", _set(C + ("quotas", "tank"), -1), "queues.crypt5.quotas.tank: expected an integer 0 or more"),
    ("quotas empty", _set(C + ("quotas",), {}), "queues.crypt5.quotas: no role has a count above 0"),
    ("quotas list", _set(C + ("quotas",), [1, 1, 3]), "queues.crypt5.quotas: expected a table"),
    ("ready_timeout 0", _set(C + ("ready_timeout",), 0), "queues.crypt5.ready_timeout: must be greater than 0"),
    ("starvation text", _set(C + ("starvation_s",), "soon"), "queues.crypt5.starvation_s: expected a finite number"),
    ("rated bool", _set(C + ("rated",), 1), "queues.crypt5.rated: expected true or false"),
    ("window unrated", _set(C + ("window_start",), 10), "queues.crypt5.window_start: only for a rated queue"),
    ("rated one team", _set(P + ("teams",), 1), "queues.pit2v2.rated: a rated queue matches team against team"),
    ("cap below start", _set(P + ("window_cap",), 20), "queues.pit2v2.window_cap: must be at least window_start (50)"),
    ("window_start 0", _set(P + ("window_start",), 0), "queues.pit2v2.window_start: must be greater than 0"),
    ("widen negative", _set(P + ("window_widen",), -1), "queues.pit2v2.window_widen: must be 0..10000"),
    ("too big for template", _set(P + ("team_size",), 3), "does not fit template 'pit' (party_size 4)"),
]
TOGETHER = ("unknown key", "teams 3", "window_start 0", "unknown template")
BY_NAME = {what: (breakIt, fragment) for what, breakIt, fragment in MISTAKES}


class ShippedQueuesTests(TestCase):
    """etc/queues.toml: the three queues of the issue."""

    def test_shippedQueues(self):
        """dungeon5 is one team of 1 tank, 1 healer, 3 damage; raid10 2/2/6; arena2v2 two rated teams of 2 from +/-50."""
        queues = loadQueues("etc/queues.toml", classes=loadClassRoles("etc/classes.toml"))
        self.assertEqual(list(queues), ["dungeon5", "raid10", "arena2v2"])
        d, r, a = queues["dungeon5"], queues["raid10"], queues["arena2v2"]
        self.assertEqual((d.template, d.teams, d.team_size, d.quotas, d.rated),
                         ("deadmines", 1, 5, {"tank": 1, "healer": 1, "damage": 3}, False))
        self.assertEqual((r.teams, r.team_size, r.quotas), (1, 10, {"tank": 2, "healer": 2, "damage": 6}))
        self.assertEqual((a.template, a.teams, a.team_size, a.quotas, a.rated, a.window_start),
                         ("arena", 2, 2, {}, True, 50.0))
        self.assertLess(a.window_start, a.window_cap)
        for spec in queues.values():
            self.assertEqual(spec.ready_timeout, 20.0)

    def test_shippedTemplates(self):
        """Each shipped queue plays a template of etc/instances.toml big enough for its match."""
        raw = readDataTOML("etc/instances.toml", ValueError)["instances"]
        templates = {tid: Template(spec["party_size"]) for tid, spec in raw.items()}
        queues = loadQueues("etc/queues.toml", templates=templates)
        self.assertEqual({q.template for q in queues.values()} - set(templates), set())

    def test_shippedClassRoles(self):
        """Each class of etc/classes.toml has its role; every role is some class's."""
        roles = loadClassRoles("etc/classes.toml")
        self.assertEqual(roles["warrior"], "tank")
        self.assertEqual(roles["priest"], "healer")
        self.assertEqual(set(roles.values()), {"tank", "healer", "damage"})


class QueueFileTests(TestCase):
    """A queues file with mistakes: each named at its key, all in one error."""

    def test_valid(self):
        """A valid document gives one QueueSpec per queue, defaults filled in and the title defaulting to the id."""
        queues = parse(valid())
        self.assertEqual(queues["crypt5"], QueueSpec(
            name="crypt5", title="The Crypt", template="crypt", teams=1, team_size=5,
            quotas={"tank": 1, "healer": 1, "damage": 3}, ready_timeout=20.0, starvation_s=90.0))
        self.assertEqual(queues["pit2v2"].title, "pit2v2")
        self.assertEqual(queues["pit2v2"].quotas, {})

    def test_teamSizeFromQuotas(self):
        """Without team_size, a team is the sum of the quotas."""
        doc = valid()
        del doc["queues"]["crypt5"]["team_size"]
        doc["queues"]["crypt5"]["quotas"] = {"tank": 1, "healer": 1, "damage": 2}
        self.assertEqual(parse(doc)["crypt5"].team_size, 4)

    def test_templatesAsNames(self):
        """Templates may be given as bare ids: only their existence is checked."""
        queues = parseQueues(valid(), {"crypt", "pit"}, None)
        self.assertEqual(set(queues), {"crypt5", "pit2v2"})

    def test_eachMistakeReported(self):
        """Each kind of mistake is reported, naming the queue and key."""
        missed = []
        for what, breakIt, fragment in MISTAKES:
            doc = valid()
            breakIt(doc)
            try:
                parse(doc)
            except QueueDataError as e:
                if fragment not in str(e):
                    missed.append(f"{what}: {fragment!r} not in {str(e)!r}")
            else:
                missed.append(f"{what}: no error")
        self.assertEqual(missed, [])

    def test_mistakesReportedTogether(self):
        """Mistakes in several keys come in one error (a ConfigError), one problem each, after the file's name."""
        doc = valid()
        for what in TOGETHER:
            BY_NAME[what][0](doc)
        with self.assertRaises(ConfigError) as e:
            parse(doc)
        self.assertIsInstance(e.exception, QueueDataError)
        for what in TOGETHER:
            self.assertIn(BY_NAME[what][1], str(e.exception))
        self.assertEqual(len(e.exception.problems), len(TOGETHER))
        self.assertTrue(str(e.exception).startswith("q.toml: "))

    def test_roleNobodyPlays(self):
        """Quotas asking for a role no class plays are refused: that queue could never fill."""
        with self.assertRaises(QueueDataError) as e:
            parseQueues(valid(), TEMPLATES, {"warrior": "tank", "mage": "damage"})
        self.assertEqual([str(p) for p in e.exception.problems],
                         ["queues.crypt5.quotas.healer: no class of the classes file plays this role"])

    def test_noQueues(self):
        """A file without queues is refused."""
        with self.assertRaises(QueueDataError) as e:
            parse({})
        self.assertIn("no [queues.<id>] tables", str(e.exception))

    def test_unreadable(self):
        """A missing file or one that is not TOML is one problem naming the file."""
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: [os.remove(os.path.join(d, f)) for f in os.listdir(d)] and os.rmdir(d))
        missing = os.path.join(d, "none.toml")
        with self.assertRaises(QueueDataError) as e:
            loadQueues(missing)
        self.assertIn("cannot read", str(e.exception))
        self.assertIn(missing, str(e.exception))
        broken = os.path.join(d, "broken.toml")
        with open(broken, "w") as f:
            f.write("[queues.x\n")
        with self.assertRaises(QueueDataError) as e:
            loadQueues(broken)
        self.assertIn("not valid TOML", str(e.exception))

    def test_badClasses(self):
        """A classes file whose class has no known role is refused, naming the class."""
        d = tempfile.mkdtemp()
        path = os.path.join(d, "classes.toml")
        with open(path, "w") as f:
            f.write('[classes.bard]\nname = "Bard"\nrole = "singer"\n[classes.mage]\nrole = "damage"\n')
        self.addCleanup(os.rmdir, d)
        self.addCleanup(os.remove, path)
        with self.assertRaises(QueueDataError) as e:
            loadClassRoles(path)
        self.assertIn("classes.bard.role: must be one of tank, healer, damage", str(e.exception))
        self.assertEqual(len(e.exception.problems), 1)
