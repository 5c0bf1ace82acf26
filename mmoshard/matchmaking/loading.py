"""Reading the matchmaking queues (etc/queues.toml) into QueueSpecs, every problem reported at once."""

import math
import re

import attrs

from mmoshard.config import ConfigError, Problem
from mmoshard.matchmaking.data import ROLES, QueueSpec
from mmoshard.paths import readDataTOML

# Reference of every key: docs/matchmaking.md ("Queues").

# Queue ids name volatile-store keys, metrics labels and match ids
# ("<queue>/<n>"): no separators in them.
ID = re.compile(r"^[a-z0-9_]{1,32}$")
MAX_TEAM_SIZE = 40
# 1: the players against the instance; 2: team against team.
TEAM_COUNTS = (1, 2)
MAX_SECONDS = 86400.0


class QueueDataError(ConfigError):
    """
    The queues file (or the classes file it is checked with) is missing or
    malformed.  C{problems} lists every L{Problem} (paths like
    C{queues.dungeon5.quotas}); C{source} is the file named in the message.
    """

    def __init__(self, problems, source):
        self.source = source
        super().__init__(problems)

    def __str__(self):
        return f"{self.source}: invalid queues:\n" + "\n".join(f"  - {p}" for p in self.problems)


def _isInt(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _isNumber(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _between(lo, hi):
    return lambda v: None if lo <= v <= hi else f"must be {lo}..{hi}"


def _above(lo, hi=MAX_SECONDS):
    return lambda v: None if lo < v <= hi else f"must be greater than {lo} and at most {hi:g}"


def _nonEmpty(v):
    return None if v.strip() else "must not be empty"


# key -> (expected, test, convert, check)
_KINDS = {
    "int": ("an integer", _isInt, int),
    "float": ("a finite number", _isNumber, float),
    "str": ("a string", lambda v: isinstance(v, str), str),
    "bool": ("true or false", lambda v: isinstance(v, bool), bool),
}
# The scalar keys of a [queues.<id>] table (quotas is a table of its own).
QUEUE_KEYS = {
    "title": ("str", None),
    "template": ("str", _nonEmpty),
    "teams": ("int", lambda v: None if v in TEAM_COUNTS else "must be 1 or 2"),
    "team_size": ("int", _between(1, MAX_TEAM_SIZE)),
    "rated": ("bool", None),
    "window_start": ("float", _above(0, 10000)),
    "window_widen": ("float", _between(0, 10000)),
    "window_cap": ("float", _above(0, 10000)),
    "ready_timeout": ("float", _above(0, 600)),
    "starvation_s": ("float", _above(0)),
}
_REQUIRED = ("template",)
_RATED_ONLY = ("window_start", "window_widen", "window_cap")
_DEFAULTS = {f.name: f.default for f in attrs.fields(QueueSpec) if f.default is not attrs.NOTHING}


def _scalars(raw, path, problems):
    """@return: the well-formed scalar keys of one queue table; the rest are problems."""
    values = {}
    for key in raw:
        if key not in QUEUE_KEYS and key != "quotas":
            known = ", ".join(sorted(list(QUEUE_KEYS) + ["quotas"]))
            problems.append(Problem(f"{path}.{key}", f"unknown key (known: {known})"))
    for key in _REQUIRED:
        if key not in raw:
            problems.append(Problem(f"{path}.{key}", "required"))
    for key, (kind, check) in QUEUE_KEYS.items():
        if key not in raw:
            continue
        name, test, convert = _KINDS[kind]
        v = raw[key]
        if not test(v):
            problems.append(Problem(f"{path}.{key}", f"expected {name}, got {v!r}"))
            continue
        v = convert(v)
        error = check(v) if check else None
        if error:
            problems.append(Problem(f"{path}.{key}", error))
            continue
        values[key] = v
    return values


def _quotas(raw, path, problems):
    """@return: the quotas table as {role: count} (roles with a count above 0), or None when malformed."""
    if "quotas" not in raw:
        return {}
    table = raw["quotas"]
    if not isinstance(table, dict):
        problems.append(Problem(f"{path}.quotas", f"expected a table like {{ tank = 1 }}, got {table!r}"))
        return None
    quotas = {}
    ok = True
    for role, count in table.items():
        if role not in ROLES:
            problems.append(Problem(f"{path}.quotas.{role}", f"unknown role (known: {', '.join(ROLES)})"))
            ok = False
        elif not _isInt(count) or count < 0:
            problems.append(Problem(f"{path}.quotas.{role}", f"expected an integer 0 or more, got {count!r}"))
            ok = False
        elif count:
            quotas[role] = count
    if ok and not quotas:
        problems.append(Problem(f"{path}.quotas", "no role has a count above 0 (leave quotas out for any role)"))
        ok = False
    # In ROLES order, so equal files give equal specs.
    return {r: quotas[r] for r in ROLES if r in quotas} if ok else None


def _templateSize(templates, template):
    """@return: the party size of C{template} when C{templates} is a mapping of specs that tell it, else None."""
    if isinstance(templates, dict):
        return getattr(templates.get(template), "party_size", None)
    return None


def parseQueue(name, raw, templates=None, classes=None, problems=None):
    """
    Check one C{[queues.<name>]} table.

    @param templates: the instance template ids a queue may name (a
        mapping of id -> spec, whose C{party_size} then bounds the match,
        or a collection of ids); None: not checked.
    @param classes: class id -> role (C{etc/classes.toml}); each role a
        queue's quotas ask for must be some class's, else the queue could
        never fill; None: not checked.
    @param problems: the list to append L{Problem}s to.
    @return: a L{QueueSpec}, or None when it has problems.
    """
    path = f"queues.{name}"
    before = len(problems)
    if not ID.match(name):
        problems.append(Problem(path, "a queue id is 1..32 lower-case letters, digits and _"))
    v = _scalars(raw, path, problems)
    quotas = _quotas(raw, path, problems)
    teams = v.get("teams", _DEFAULTS["teams"])
    size = v.get("team_size", _DEFAULTS["team_size"])
    rated = v.get("rated", _DEFAULTS["rated"])
    if quotas and "team_size" in raw and sum(quotas.values()) != size:
        problems.append(Problem(f"{path}.quotas", f"the counts add up to {sum(quotas.values())}, "
                                f"not team_size ({size})"))
    elif quotas and "team_size" not in raw:
        size = v["team_size"] = sum(quotas.values())
    if rated and teams != 2:
        problems.append(Problem(f"{path}.rated", "a rated queue matches team against team: teams = 2"))
    if not rated:
        for key in _RATED_ONLY:
            if key in raw:
                problems.append(Problem(f"{path}.{key}", "only for a rated queue (rated = true)"))
    start = v.get("window_start", _DEFAULTS["window_start"])
    cap = v.get("window_cap", _DEFAULTS["window_cap"])
    if rated and cap < start:
        problems.append(Problem(f"{path}.window_cap", f"must be at least window_start ({start:g})"))
    template = v.get("template")
    if template is not None and templates is not None and template not in templates:
        known = ", ".join(sorted(templates)) or "none"
        problems.append(Problem(f"{path}.template", f"unknown instance template {template!r} (known: {known})"))
    partySize = _templateSize(templates, template)
    if partySize is not None and teams * size > partySize:
        problems.append(Problem(f"{path}.team_size", f"a match of {teams} x {size} does not fit template "
                                f"{template!r} (party_size {partySize})"))
    if classes is not None and quotas:
        played = set(classes.values())
        for role in quotas:
            if role not in played:
                problems.append(Problem(f"{path}.quotas.{role}", "no class of the classes file plays this role"))
    if len(problems) > before:
        return None
    v["quotas"] = quotas
    v.setdefault("title", name)
    return QueueSpec(name=name, **v)


def parseQueues(raw, templates=None, classes=None, source="queues.toml"):
    """
    Check a parsed queues document.

    @return: {queue name: L{QueueSpec}}, in file order.
    @raise QueueDataError: listing every problem.
    """
    problems = []
    for key in raw:
        if key != "queues":
            problems.append(Problem(key, "unknown table (known: queues)"))
    table = raw.get("queues", {})
    specs = {}
    if not isinstance(table, dict):
        problems.append(Problem("queues", "expected [queues.<id>] tables"))
        table = {}
    for name, value in table.items():
        if not isinstance(value, dict):
            problems.append(Problem(f"queues.{name}", "expected a table"))
            continue
        spec = parseQueue(name, value, templates, classes, problems)
        if spec is not None:
            specs[name] = spec
    if not table and not problems:
        problems.append(Problem("queues", "no [queues.<id>] tables"))
    if problems:
        raise QueueDataError(problems, source)
    return specs


class _Unreadable(Exception):
    """A file cannot be read or is not TOML (becomes the one problem of a L{QueueDataError})."""


def loadQueues(path, templates=None, classes=None):
    """
    Read and check the queues file (see C{etc/queues.toml}).

    @param templates: see L{parseQueue}.
    @param classes: class id -> role, as L{loadClassRoles} gives.
    @return: {queue name: L{QueueSpec}}.
    @raise QueueDataError: listing every problem (only the read error when
        the file cannot be read or is not TOML).
    """
    try:
        raw = readDataTOML(path, _Unreadable)
    except _Unreadable as e:
        raise QueueDataError([Problem("file", str(e).removeprefix(f"{path}: "))], path) from None
    return parseQueues(raw, templates, classes, path)


def loadClassRoles(path):
    """
    Read the role of each class of the classes file (C{etc/classes.toml};
    the auth role checks the rest of it).

    @return: {class id: role}.
    @raise QueueDataError: when the file cannot be read, has no classes, or
        a class has no known role (every problem at once).
    """
    try:
        raw = readDataTOML(path, _Unreadable)
    except _Unreadable as e:
        raise QueueDataError([Problem("file", str(e).removeprefix(f"{path}: "))], path) from None
    problems = []
    roles = {}
    table = raw.get("classes")
    if not isinstance(table, dict) or not table:
        problems.append(Problem("classes", "no [classes.<id>] tables"))
        table = {}
    for cid, spec in table.items():
        role = spec.get("role") if isinstance(spec, dict) else None
        if role not in ROLES:
            problems.append(Problem(f"classes.{cid}.role", f"must be one of {', '.join(ROLES)}"))
        else:
            roles[cid] = role
    if problems:
        raise QueueDataError(problems, path)
    return roles
