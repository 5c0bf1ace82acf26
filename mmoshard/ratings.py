"""Glicko-2 ratings per character per queue, and IMatchResults over SQL: each match's result applied exactly once."""

import json
import math

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from mmoshard.interfaces import IMatchResults
from mmoshard.store.errors import IntegrityError
from mmoshard.store.sql import placeholders

# Glicko-2 (Mark Glickman, "Example of the Glicko-2 system", 2013);
# docs/matchmaking.md "Ratings".  Ratings are shown on the Glicko scale
# (1500 +/- 350 for a newcomer) and computed on the Glicko-2 scale.
SCALE = 173.7178
INITIAL_RATING = 1500.0
INITIAL_RD = 350.0
INITIAL_VOLATILITY = 0.06
# The system constant: how much the volatility may change in one match.
TAU = 0.5
# The convergence tolerance of the volatility iteration.
EPSILON = 1e-6
# A rating period is a day: each whole day without a match widens the
# rating deviation as one empty Glicko-2 period does, up to INITIAL_RD.
PERIOD = 86400.0
# Scores of a team's member against another team.
WIN, DRAW, LOSS = 1.0, 0.5, 0.0
# Transactions retried when another one changed the same ratings meanwhile.
RETRIES = 3


@attrs.frozen
class Rating:
    """A character's rating in one queue: C{rating} +/- C{rd} (Glicko scale), its C{volatility}, C{games} played."""

    rating: float = INITIAL_RATING
    rd: float = INITIAL_RD
    volatility: float = INITIAL_VOLATILITY
    games: int = 0


INITIAL = Rating()


def _g(phi):
    return 1.0 / math.sqrt(1.0 + 3.0 * phi * phi / (math.pi * math.pi))


def _expected(mu, muj, phij):
    return 1.0 / (1.0 + math.exp(-_g(phij) * (mu - muj)))


def _volatility(phi, sigma, delta, v, tau):
    """The new volatility: the Illinois iteration of step 5 of Glicko-2."""
    a = math.log(sigma * sigma)

    def f(x):
        ex = math.exp(x)
        return (ex * (delta * delta - phi * phi - v - ex) / (2.0 * (phi * phi + v + ex) ** 2)
                - (x - a) / (tau * tau))

    A = a
    if delta * delta > phi * phi + v:
        B = math.log(delta * delta - phi * phi - v)
    else:
        k = 1
        while f(a - k * tau) < 0:
            k += 1
        B = a - k * tau
    fA, fB = f(A), f(B)
    while abs(B - A) > EPSILON:
        C = A + (A - B) * fA / (fB - fA)
        fC = f(C)
        if fC * fB <= 0:
            A, fA = B, fB
        else:
            fA /= 2.0
        B, fB = C, fC
    return math.exp(A / 2.0)


def update(player, games, tau=TAU):
    """
    One Glicko-2 rating period for C{player}.

    @param games: (opponent rating, opponent rd, score) triples, score
        L{WIN}, L{DRAW} or L{LOSS}; empty: the period only widens the rd.
    @return: the new L{Rating} (C{games} counts one more when there were any).
    """
    mu = (player.rating - INITIAL_RATING) / SCALE
    phi = player.rd / SCALE
    sigma = player.volatility
    if not games:
        return attrs.evolve(player, rd=min(math.sqrt(phi * phi + sigma * sigma) * SCALE, INITIAL_RD))
    inverse, total = 0.0, 0.0
    for rating, rd, score in games:
        muj, phij = (rating - INITIAL_RATING) / SCALE, rd / SCALE
        e = _expected(mu, muj, phij)
        g = _g(phij)
        inverse += g * g * e * (1.0 - e)
        total += g * (score - e)
    v = 1.0 / inverse
    sigma2 = _volatility(phi, sigma, v * total, v, tau)
    pre = math.sqrt(phi * phi + sigma2 * sigma2)
    phi2 = 1.0 / math.sqrt(1.0 / (pre * pre) + 1.0 / v)
    mu2 = mu + phi2 * phi2 * total
    return Rating(rating=mu2 * SCALE + INITIAL_RATING, rd=min(phi2 * SCALE, INITIAL_RD),
                  volatility=sigma2, games=player.games + 1)


def idle(player, seconds, period=PERIOD):
    """@return: C{player} after C{seconds} without a match: its rd widened by each whole period, up to the initial rd."""
    periods = int(max(0.0, seconds) // period)
    if periods <= 0 or player.games == 0:
        return player
    phi, sigma = player.rd / SCALE, player.volatility
    return attrs.evolve(player, rd=min(math.sqrt(phi * phi + periods * sigma * sigma) * SCALE, INITIAL_RD))


def rateMatch(teams, winner, tau=TAU):
    """
    The ratings after one team-against-team match: each member plays one
    game against each other team, taken as one opponent whose rating is
    its members' mean and whose rd is their root mean square.

    @param teams: a list of lists of L{Rating}.
    @param winner: the index of the winning team, or None for a draw.
    @return: the new ratings, in the shape of C{teams}.
    """
    composite = []
    for team in teams:
        composite.append((sum(r.rating for r in team) / len(team),
                          math.sqrt(sum(r.rd * r.rd for r in team) / len(team))))
    out = []
    for i, team in enumerate(teams):
        games = []
        for j, (rating, rd) in enumerate(composite):
            if j == i:
                continue
            score = DRAW if winner is None else WIN if winner == i else LOSS if winner == j else DRAW
            games.append((rating, rd, score))
        out.append([update(member, games, tau) for member in team])
    return out


class RatingConflict(Exception):
    """Another transaction kept changing the ratings a report read (retried L{RETRIES} times)."""


def _txn_ratings(cursor, queue, ids):
    """@return: {character id: (L{Rating}, updated_at)} of the rated characters among C{ids}."""
    if not ids:
        return {}
    cursor.execute(
        "SELECT character_id, rating, rd, volatility, games, updated_at FROM mm_ratings "
        f"WHERE queue = ? AND character_id IN ({placeholders(len(ids))})",
        (queue, *ids),
    )
    return {int(row[0]): (Rating(float(row[1]), float(row[2]), float(row[3]), int(row[4])), float(row[5]))
            for row in cursor.fetchall()}


def _txn_report(cursor, matchId, queue, teams, winner, now, period, tau):
    """
    Apply one match: claim its C{mm_results} row first (a second report
    stops there and answers the first one's ratings), then write each
    member's new rating, checking nobody else changed it meanwhile.

    @return: ({character id: new rating}, applied) where C{applied} is
        False when the match had been reported before.
    """
    try:
        cursor.execute(
            "INSERT INTO mm_results (match_id, queue, winner, reported_at, ratings) VALUES (?, ?, ?, ?, ?)",
            (matchId, queue, winner, now, "{}"),
        )
    except IntegrityError:
        row = cursor.execute("SELECT ratings FROM mm_results WHERE match_id = ?", (matchId,)).fetchone()
        if row is None:
            raise RatingConflict(matchId)  # the other report rolled back: try again
        return {int(cid): after for cid, (_, after) in json.loads(row[0]).items()}, False
    ids = sorted(cid for team in teams for cid in team)
    cursor.execute(f"SELECT id FROM characters WHERE id IN ({placeholders(len(ids))})", tuple(ids))
    known = {int(row[0]) for row in cursor.fetchall()}
    stored = _txn_ratings(cursor, queue, ids)
    before = {cid: idle(stored[cid][0], now - stored[cid][1], period) if cid in stored else INITIAL
              for cid in ids}
    after = rateMatch([[before[cid] for cid in team] for team in teams], winner, tau)
    changes = {}
    for team, rated in zip(teams, after):
        for cid, new in zip(team, rated):
            if cid not in known:
                continue  # deleted meanwhile: nothing to rate
            changes[cid] = (before[cid].rating, new.rating)
            if cid in stored:
                cursor.execute(
                    "UPDATE mm_ratings SET rating = ?, rd = ?, volatility = ?, games = ?, updated_at = ? "
                    "WHERE character_id = ? AND queue = ? AND games = ?",
                    (new.rating, new.rd, new.volatility, new.games, now, cid, queue, stored[cid][0].games),
                )
                if cursor.rowcount != 1:
                    raise RatingConflict(cid)
            else:
                try:
                    cursor.execute(
                        "INSERT INTO mm_ratings (character_id, queue, rating, rd, volatility, games, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (cid, queue, new.rating, new.rd, new.volatility, new.games, now),
                    )
                except IntegrityError:
                    raise RatingConflict(cid) from None
    cursor.execute("UPDATE mm_results SET ratings = ? WHERE match_id = ?",
                   (json.dumps({str(cid): list(pair) for cid, pair in changes.items()}), matchId))
    return {cid: after for cid, (_, after) in changes.items()}, True


def checkReport(matchId, queue, teams, winner):
    """
    @return: C{teams} as a list of lists of ints.
    @raise ValueError: for a malformed report (naming what is wrong).
    """
    if not isinstance(matchId, str) or not 0 < len(matchId) <= 128:
        raise ValueError("a match id is a str of 1..128 characters")
    if not isinstance(queue, str) or not 0 < len(queue) <= 64:
        raise ValueError("a queue name is a str of 1..64 characters")
    teams = [list(team) for team in teams]
    if len(teams) < 2 or not all(teams):
        raise ValueError("a rated match has two teams or more, none empty")
    ids = [cid for team in teams for cid in team]
    if not all(isinstance(cid, int) and not isinstance(cid, bool) for cid in ids):
        raise ValueError("character ids are ints")
    if len(set(ids)) != len(ids):
        raise ValueError("a character is in two teams, or twice in one")
    if winner is not None and (isinstance(winner, bool) or winner not in range(len(teams))):
        raise ValueError(f"winner is a team index 0..{len(teams) - 1}, or None for a draw")
    return teams


@implementer(IMatchResults)
class SqlMatchResults:
    """
    L{IMatchResults} on the SQL store, provided by the core of every node.
    A report is one transaction keyed by the match id (C{mm_results}):
    exactly once, whichever node reports, however often.
    """

    log = Logger()

    def __init__(self, sql, clock, period=PERIOD, tau=TAU):
        """
        @param sql: the L{mmoshard.interfaces.ISQLStore}.
        @param clock: an IReactorTime, for C{reported_at} and idle periods.
        """
        self.sql = sql
        self.clock = clock
        self.period = period
        self.tau = tau

    def report(self, matchId, queue, teams, winner):
        return Deferred.fromCoroutine(self._report(matchId, queue, teams, winner))

    async def _report(self, matchId, queue, teams, winner):
        teams = checkReport(matchId, queue, teams, winner)
        for attempt in range(RETRIES):
            try:
                ratings, applied = await self.sql.runInteraction(
                    _txn_report, matchId, queue, teams, winner, self.clock.seconds(), self.period, self.tau)
                break
            except RatingConflict as e:
                self.log.info("match {match} of queue {queue}: rating of {character_id} changed meanwhile "
                              "(attempt {attempt}); applying again", match=matchId, queue=queue,
                              character_id=e.args[0], attempt=attempt + 1)
        else:
            raise RatingConflict(matchId)
        if applied:
            self.log.info("match {match} of queue {queue} rated: winner {winner}, ratings {ratings}",
                          match=matchId, queue=queue, winner=winner, ratings=ratings)
        else:
            self.log.info("match {match} of queue {queue} was reported before: nothing changed",
                          match=matchId, queue=queue)
        return ratings

    def ratings(self, queue, characterIds):
        return Deferred.fromCoroutine(self._ratings(queue, list(characterIds)))

    async def _ratings(self, queue, ids):
        stored = await self.sql.runInteraction(_txn_ratings, queue, sorted(set(ids)))
        now = self.clock.seconds()
        return {cid: idle(stored[cid][0], now - stored[cid][1], self.period) if cid in stored else INITIAL
                for cid in ids}
