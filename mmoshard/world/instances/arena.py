"""Arena copies: a matchmade roster in two teams fighting each other, the result reported once through IMatchResults, told to the players, and the copy closed."""

import attrs
import msgpack
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.world.instances import errors
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.ids import instanceZoneId

# What the players of an arena are told once its match has a result.
RESULT = "world.arena.result"
# A result IMatchResults did not take is reported again this many times, this far apart.
REPORT_TRIES = 3
REPORT_RETRY = 5.0
# Why a match ended (RESULT's reason).
DEFEATED = "defeated"  # every member of one team is out
ALL_OUT = "all_out"  # every member of both teams is out at once: a draw
TIME = "time"  # match_duration ran out: a draw


def matchKey(instanceId):
    """@return: the volatile key of the L{ArenaMatch} of arena copy C{instanceId} (msgpack)."""
    return f"instance:match:{int(instanceId)}"


@attrs.frozen
class ArenaMatch:
    """
    What an arena copy is made for: the matchmaker's C{match_id}
    (C{"<queue>/<id>"}: the queue its ratings are kept for) and its two
    C{teams}, tuples of character ids.
    """

    match_id: str
    teams: tuple

    @property
    def queue(self):
        """@return: the queue of the match id (before its first "/"), or None when it names none."""
        queue, sep, rest = self.match_id.partition("/")
        return queue if sep and queue and rest else None

    @property
    def roster(self):
        return [cid for team in self.teams for cid in team]

    def teamOf(self, characterId):
        """@return: the index of C{characterId}'s team, or None."""
        for i, team in enumerate(self.teams):
            if characterId in team:
                return i
        return None

    def encode(self):
        return msgpack.packb([self.match_id, [list(t) for t in self.teams]], use_bin_type=True)

    @classmethod
    def decode(cls, payload):
        """@raise ValueError: C{payload} is not what L{encode} makes."""
        try:
            matchId, teams = msgpack.unpackb(payload, raw=False)
            return cls(str(matchId), tuple(tuple(int(c) for c in t) for t in teams))
        except Exception as e:
            raise ValueError(f"undecodable arena match: {e}") from None


def checkMatch(template, roster, teams, matchId):
    """
    @return: the L{ArenaMatch} of an C{IInstances.create} of arena
        C{template}: two non-empty teams of distinct character ids, and a
        match id; the roster, when given, holds exactly their members.
    @raise InstanceError: C{instance.bad_match} naming what is wrong.
    """
    def bad(why):
        return InstanceError(errors.BAD_MATCH, f"arena {template!r}: {why}")

    if not isinstance(matchId, str) or not matchId:
        raise bad("a match id is required")
    if not isinstance(teams, (list, tuple)) or len(teams) != 2:
        raise bad("exactly two teams are required")
    parsed = []
    for team in teams:
        if (not isinstance(team, (list, tuple)) or not team
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in team)):
            raise bad("a team is a non-empty list of character ids")
        parsed.append(tuple(team))
    everyone = [c for team in parsed for c in team]
    if len(set(everyone)) != len(everyone):
        raise bad("a character is in a team twice")
    if roster and sorted(int(c) for c in roster) != sorted(everyone):
        raise bad("the roster is not the teams' members")
    return ArenaMatch(matchId, tuple(parsed))


async def arenaSpawn(volatile, zones, spec, instanceId, characterId):
    """
    @return: where C{characterId} enters arena copy C{instanceId} of
        C{spec}: its team's spawn point (the layout's first for team 0,
        second for team 1; the first for a character of neither).
    @raise InstanceError: C{instance.unavailable} when the match cannot be read.
    """
    zone = zones.get(instanceZoneId(spec.id, instanceId))
    instance = getattr(zone, "instance", None) if zone is not None else None
    if instance is not None and instance.arena is not None:
        match = instance.arena.match
    else:
        try:
            raw = await volatile.get(matchKey(instanceId))
        except StoreError as e:
            raise InstanceError(errors.UNAVAILABLE, f"arena {instanceId} not read: {e}",
                                retry_after=5.0)
        match = ArenaMatch.decode(raw) if raw is not None else None
    team = match.teamOf(characterId) if match is not None else None
    return spec.layout.spawns[team or 0]


class Arena:
    """
    The match in one arena copy (at C{instance.arena}).  Its combat fights
    side against side (C{Combat.sides}); a member is out once it died (it
    then has no side: it neither fights nor is fought, released or not),
    left the copy, or has not arrived C{start_grace} seconds after the copy
    opened.  The first time a whole team is out the other wins (both at
    once, or C{match_duration} over: a draw); the result is reported once
    through the L{IMatchResults} (exactly once per match id there; retried
    when it fails), told to the members on this node (L{RESULT}), the dead
    are revived, nobody fights any more, and the copy closes
    C{close_delay} seconds later.
    """

    log = Logger()

    def __init__(self, instance, match, results, roster, tasks, clock, close):
        """
        @param results: the L{IMatchResults} (None: the result is told, not recorded).
        @param roster: the world's L{mmoshard.world.players.Roster} (who is told).
        @param close: callable(reason) closing the copy: a Deferred.
        """
        self.instance = instance
        self.match = match
        self.results = results
        self.roster = roster
        self.tasks = tasks
        self.clock = clock
        self.close = close
        self.members = frozenset(match.roster)
        self.arrived = set()
        self.fallen = set()
        self.winner = None
        self.reason = None  # set once the match has its result
        self.closeAt = None  # when the copy closes, once the result is told

    @property
    def spec(self):
        return self.instance.spec

    def start(self):
        """The copy's combat fights side against side from now on."""
        combat = self.instance.zone.combat
        combat.pvp = True
        combat.sides = {cid: self.match.teamOf(cid) for cid in self.members}
        combat.deathListeners.append(self.died)

    def died(self, victim, killer):
        """A combat death listener: a member who dies is out."""
        if victim.id not in self.members or self.reason is not None:
            return
        self.fallen.add(victim.id)
        self.instance.zone.combat.sides.pop(victim.id, None)
        self.judge(self.clock.seconds())

    def second(self, now):
        """The instance's second: arrivals, leavers, the start grace, the time limit; the close once due."""
        if self.reason is None:
            self.judge(now)
        elif self.closeAt is not None and now >= self.closeAt:
            self.closeAt = None
            self.tasks.track(self.close("finished"))

    def _out(self, cid, inside, now):
        if cid in self.fallen:
            return True
        if cid in inside:
            return False
        return cid in self.arrived or now - self.instance.createdAt >= self.spec.start_grace

    def judge(self, now):
        """Decide the result when one team (or both) is out, or the time is up."""
        if self.reason is not None:
            return
        inside = self.instance.zone.observers
        self.arrived.update(cid for cid in self.members if cid in inside)
        out = [all(self._out(cid, inside, now) for cid in team) for team in self.match.teams]
        if all(out):
            self.finish(None, ALL_OUT)
        elif any(out):
            self.finish(out.index(False), DEFEATED)
        elif now - self.instance.createdAt >= self.spec.match_duration:
            self.finish(None, TIME)

    def finish(self, winner, reason):
        """The match has its result: nobody fights any more, the dead live again, the result goes out."""
        self.winner, self.reason = winner, reason
        zone = self.instance.zone
        combat = zone.combat
        combat.sides = {}
        for cid in self.fallen:
            entity = zone.entities.get(cid)
            if entity is not None:
                combat.revive(entity, 1.0, None)
        self.log.info("arena match {match} in instance {instance_id}: {outcome} ({reason})",
                      match=self.match.match_id, instance_id=self.instance.id, reason=reason,
                      outcome="a draw" if winner is None else f"team {winner} won")
        self.tasks.track(Deferred.fromCoroutine(self._report()))

    async def _report(self):
        ratings, rated = {}, False
        results = self.results
        match = self.match
        for attempt in range(REPORT_TRIES if results is not None else 0):
            try:
                ratings = await results.report(match.match_id, match.queue,
                                               [list(t) for t in match.teams], self.winner)
                rated = True
                break
            except Exception as e:
                self.log.warn("arena match {match}: result not recorded (try {attempt} of "
                              "{tries}): {why}", match=match.match_id, attempt=attempt + 1,
                              tries=REPORT_TRIES, why=e)
                if attempt + 1 < REPORT_TRIES:
                    await deferLater(self.clock, REPORT_RETRY, lambda: None)
        if results is not None and not rated:
            self.log.error("arena match {match}: result never recorded; its ratings are "
                           "unchanged", match=match.match_id)
        self._tell(ratings or {}, rated)
        self.closeAt = self.clock.seconds() + self.spec.close_delay

    def _tell(self, ratings, rated):
        told = [{"character_id": int(cid), "rating": round(float(getattr(r, "rating", r)), 1)}
                for cid, r in sorted(ratings.items())]
        byCharacter = self.roster.byCharacter
        for cid in sorted(self.members):
            player = byCharacter.get(cid)
            if player is None:
                continue
            player.session.send(RESULT, {
                "match": self.match.match_id, "instance_id": self.instance.id,
                "winner": self.winner, "team": self.match.teamOf(cid), "reason": self.reason,
                "rated": rated, "ratings": told,
            })
