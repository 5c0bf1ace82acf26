"""The matchmaking role's configuration ([matchmaking]): fields, the frozen config class, and loading the queues and class roles."""

import attrs

from mmoshard.config import Field, Problem, nonNegative, positive
from mmoshard.matchmaking.loading import QueueDataError, loadClassRoles, loadQueues
from mmoshard.paths import readDataTOML

# A pass under a burst of mm.queue forms this fraction of its matches at most
# ([matchmaking] admission_first).
YIELD_SHARE = 10

FIELDS = {
    "queues_file": Field("datapath", "etc/queues.toml", None,
                         "the queues (docs/matchmaking.md \"Queues\")"),
    "classes_file": Field("datapath", "etc/classes.toml", None,
                          "character classes: each class's role is its members' default role"),
    "instances_file": Field("str", "etc/instances.toml", None,
                            "instance templates the queues' templates are checked against "
                            "(\"\": not checked)"),
    "match_interval": Field("float", 0.25, positive,
                            "seconds between two matching passes of a queue whose lease this node holds"),
    "lease_ttl": Field("float", 5.0, positive,
                       "seconds a queue's lease outlives its holder's last renewal: another node "
                       "takes the queue over within this after the holder dies"),
    "ready_timeout": Field("float", -1.0, None,
                           "seconds a ready check waits for every accept (-1: each queue's own "
                           "ready_timeout)"),
    "max_matches_per_pass": Field("int", 200, positive,
                                  "matches one pass forms per queue at most"),
    "admission_first": Field("int", 50, nonNegative,
                             "mm.queue requests in progress on this node from which a pass "
                             "forms at most a tenth of max_matches_per_pass: a burst of tickets "
                             "is answered before its matches are formed (0: off)"),
    "scan_limit": Field("int", 20000, positive,
                        "waiting tickets one pass reads per queue, oldest first"),
    "resume_grace": Field("float", -1.0, None,
                          "seconds a ticket outlives the last node refreshing its members "
                          "(-1: the [session] resume_grace)"),
    "stats_interval": Field("float", 5.0, positive,
                            "seconds between two reads of a held queue's statistics "
                            "(metrics, the ETA answered to mm.queue)"),
    "rating_cache": Field("float", 60.0, nonNegative,
                          "seconds a node keeps a rating it read for a character said mm.hello "
                          "to it (forgotten sooner when a match of that queue is made; 0: read "
                          "at every mm.queue)"),
    "instance_retries": Field("int", 1, nonNegative,
                              "times a failed IInstances.create of an accepted match is retried "
                              "before its players are requeued"),
    "matched_ttl": Field("float", 300.0, positive,
                         "seconds each member's mm.matched is kept in the store after its match "
                         "completed (answered by mm.hello and mm.status until it entered): the "
                         "admission ticket's lifetime"),
    "test_pause_announce": Field("float", 0.0, nonNegative,
                                 "seconds the lease holder sleeps between completing a match and "
                                 "sending its mm.matched (0: off; for crash tests only, never in "
                                 "production)"),
}


@attrs.frozen
class MatchmakingConfig:
    """The frozen [matchmaking] section, with the queues and class roles it names loaded."""

    queues_file: str = "etc/queues.toml"
    classes_file: str = "etc/classes.toml"
    instances_file: str = "etc/instances.toml"
    match_interval: float = 0.25
    lease_ttl: float = 5.0
    ready_timeout: float = -1.0
    max_matches_per_pass: int = 200
    admission_first: int = 50
    scan_limit: int = 20000
    resume_grace: float = -1.0
    stats_interval: float = 5.0
    rating_cache: float = 60.0
    instance_retries: int = 1
    matched_ttl: float = 300.0
    test_pause_announce: float = 0.0
    queues: dict = attrs.field(factory=dict)  # name -> QueueSpec
    classRoles: dict = attrs.field(factory=dict)  # class id -> role

    def readyTimeout(self, spec):
        """@return: the seconds a ready check of queue C{spec} waits."""
        return spec.ready_timeout if self.ready_timeout < 0 else self.ready_timeout

    def passLimit(self, admitting):
        """@return: the matches a pass may form while C{admitting} mm.queue requests are in progress on this node."""
        if self.admission_first and admitting >= self.admission_first:
            return max(1, self.max_matches_per_pass // YIELD_SHARE)
        return self.max_matches_per_pass

    def grace(self, sessionGrace):
        """@return: the seconds a ticket outlives its members' last refresh."""
        return sessionGrace if self.resume_grace < 0 else self.resume_grace


def _templates(path):
    """@return: the template ids of the instances file, or None when it is not checked (or unreadable: the world reports it)."""
    if not path:
        return None
    try:
        raw = readDataTOML(path, ValueError)
    except ValueError:
        return None
    table = raw.get("instances")
    return set(table) if isinstance(table, dict) else None


def validate(values, path, problems):
    """Cross-field checks of [matchmaking], and loading its queues and classes so their errors show at start-up."""
    if values["ready_timeout"] <= 0 and values["ready_timeout"] != -1.0:
        problems.append(Problem(f"{path}.ready_timeout",
                                "must be more than 0, or -1 for each queue's own"))
    if values["resume_grace"] < 0 and values["resume_grace"] != -1.0:
        problems.append(Problem(f"{path}.resume_grace",
                                "must be 0 or more, or -1 for the session resume grace"))
    if values["lease_ttl"] < 3 * values["match_interval"]:
        problems.append(Problem(f"{path}.lease_ttl",
                                "must be at least 3 × match_interval (the holder renews it "
                                "every pass)"))
    try:
        values["classRoles"] = loadClassRoles(values["classes_file"])
    except QueueDataError as e:
        for problem in e.problems:
            problems.append(Problem(f"{path}.classes_file", f"{e.source}: {problem}"))
        values["classRoles"] = {}
    try:
        values["queues"] = loadQueues(values["queues_file"], _templates(values["instances_file"]),
                                      values["classRoles"] or None)
    except QueueDataError as e:
        for problem in e.problems:
            problems.append(Problem(f"{path}.queues_file", f"{e.source}: {problem}"))
        values["queues"] = {}


def makeConfig(**overrides):
    """@return: a L{MatchmakingConfig} of the defaults with C{overrides} (tests, tools); nothing is read."""
    values = {name: field.default for name, field in FIELDS.items()}
    values.update(overrides)
    return MatchmakingConfig(**values)
