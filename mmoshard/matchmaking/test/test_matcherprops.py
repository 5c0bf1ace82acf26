"""Property tests of the matcher against a brute-force reference: exact quotas, whole parties, oldest first, no starvation, rating windows, balance."""

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.data import Member, QueueSpec, Ticket
from mmoshard.matchmaking.matcher import fits, formMatches
from mmoshard.matchmaking.test.reference import couldJoin, matchProblems, validMatches

PROPS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
NEVER = 1e9  # a starvation_s no ticket reaches

SPECS = [
    QueueSpec(name="trio", template="t", teams=1, team_size=3,
              quotas={"tank": 1, "healer": 1, "damage": 1}, starvation_s=NEVER),
    QueueSpec(name="dungeon5", template="t", teams=1, team_size=5,
              quotas={"tank": 1, "healer": 1, "damage": 3}, starvation_s=NEVER),
    QueueSpec(name="two", template="t", teams=1, team_size=4,
              quotas={"tank": 2, "damage": 2}, starvation_s=NEVER),
    QueueSpec(name="skirmish", template="t", teams=2, team_size=2, starvation_s=NEVER),
    QueueSpec(name="arena2v2", template="t", teams=2, team_size=2, rated=True,
              window_start=50, window_widen=5, window_cap=200, starvation_s=NEVER),
    QueueSpec(name="rated3", template="t", teams=2, team_size=3, rated=True,
              quotas={"healer": 1, "damage": 2}, window_start=60, window_widen=4,
              window_cap=300, starvation_s=NEVER),
]
UNRATED = [s for s in SPECS if not s.rated]
RATED = [s for s in SPECS if s.rated]
# Mostly one role, as a class gives; sometimes the subset a player chose.
ROLE_SETS = st.sampled_from([("tank",), ("healer",), ("damage",), ("damage",), ("damage",),
                             ("tank", "damage"), ("healer", "damage"), ("tank", "healer"),
                             ("tank", "healer", "damage")])


@st.composite
def scenarios(draw, specs, maxTickets=8, maxParty=3, solos=False):
    """A queue and its waiting tickets, oldest first, and the time now."""
    spec = draw(st.sampled_from(specs))
    count = draw(st.integers(min_value=1, max_value=maxTickets))
    tickets, cid, t = [], 0, 0.0
    for i in range(count):
        size = 1 if solos else draw(st.integers(min_value=1, max_value=min(maxParty, spec.team_size)))
        members = []
        for _ in range(size):
            cid += 1
            members.append(Member(cid, draw(ROLE_SETS), rating=float(draw(st.integers(1300, 1700)))))
        t += draw(st.sampled_from([0.0, 0.5, 3.0, 10.0, 40.0]))
        tickets.append(Ticket(f"k{i}", spec.name, tuple(members), created=t))
    now = t + draw(st.sampled_from([0.0, 5.0, 30.0, 100.0]))
    return spec, tickets, now


def used(matches):
    return {t for m in matches for t in m.tickets}


class MatcherPropertyTests(TestCase):
    """Invariants of formMatches on random small queues, checked against every possible match."""

    def assertSound(self, spec, tickets, now, matches):
        byId = {t.id: t for t in tickets}
        for m in matches:
            self.assertEqual(matchProblems(spec, m, byId, now), [], m)
        ids = [t for m in matches for t in m.tickets]
        self.assertEqual(len(ids), len(set(ids)), "a ticket in two matches")
        chars = [s.character_id for m in matches for s in m.slots]
        self.assertEqual(len(chars), len(set(chars)), "a character placed twice")

    @PROPS
    @given(scenarios(SPECS))
    def test_matchesAreValid(self, scenario):
        """Every match fills each team's quotas exactly, keeps each party in one team, gives each member one of its roles, places nobody twice; rated ones are within the window and balanced as well as they can be."""
        spec, tickets, now = scenario
        self.assertSound(spec, tickets, now, formMatches(spec, tickets, now))

    @PROPS
    @given(scenarios(UNRATED))
    def test_oldestFirst(self, scenario):
        """The first match is the oldest possible: it holds the oldest ticket that can be matched at all, completed with the oldest tickets that fit."""
        spec, tickets, now = scenario
        possible = validMatches(spec, tickets, now)
        matches = formMatches(spec, tickets, now, limit=1)
        if not possible:
            self.assertEqual(matches, [])
            return
        self.assertEqual(len(matches), 1)
        self.assertEqual(matches[0].tickets, tuple(tickets[i].id for i in possible[0]))

    @PROPS
    @given(scenarios(RATED, solos=True))
    def test_oldestFirstRated(self, scenario):
        """In a rated queue of solo players, the first match holds the oldest ticket that can be matched within its window."""
        spec, tickets, now = scenario
        possible = validMatches(spec, tickets, now)
        matches = formMatches(spec, tickets, now, limit=1)
        if not possible:
            self.assertEqual(matches, [])
            return
        self.assertEqual(matches[0].tickets[0], tickets[possible[0][0]].id)

    @PROPS
    @given(scenarios(UNRATED) | scenarios(RATED, solos=True))
    def test_nothingLeftThatCouldPlay(self, scenario):
        """When no ticket is starving, the tickets left over hold no match: no group that could play is left waiting."""
        spec, tickets, now = scenario
        matches = formMatches(spec, tickets, now)
        left = [t for t in tickets if t.id not in used(matches)]
        self.assertEqual(validMatches(spec, left, now), [])

    @PROPS
    @given(scenarios(SPECS), st.sampled_from([0.0, 20.0, 60.0]))
    def test_noStarvation(self, scenario, starvation):
        """A ticket waiting past starvation_s that is not matched (and fits a team) holds back every younger ticket that could complete its match: such a ticket plays only in a match whose oldest ticket is older still."""
        spec, tickets, now = scenario
        spec = attrs.evolve(spec, starvation_s=starvation)
        matches = formMatches(spec, tickets, now)
        self.assertSound(spec, tickets, now, matches)
        byId = {t.id: t for t in tickets}
        matchOf = {t: m for m in matches for t in m.tickets}
        for s in tickets:
            if s.id in matchOf or now - s.created < starvation or not fits(spec, s.members):
                continue
            for y in tickets:
                if y.created <= s.created or y.id not in matchOf or not couldJoin(spec, s, y, now):
                    continue
                oldest = byId[matchOf[y.id].tickets[0]]
                self.assertLess(tickets.index(oldest), tickets.index(s),
                                f"{y.id} took a place {s.id} (starving) needs")

    @PROPS
    @given(scenarios(SPECS), st.integers(min_value=0, max_value=3))
    def test_limitAndDeterminism(self, scenario, limit):
        """The same tickets give the same matches; a limit gives the first matches of an unlimited call."""
        spec, tickets, now = scenario
        everything = formMatches(spec, tickets, now)
        self.assertEqual(formMatches(spec, list(tickets), now), everything)
        self.assertEqual(formMatches(spec, tickets, now, limit=limit), everything[:limit])

