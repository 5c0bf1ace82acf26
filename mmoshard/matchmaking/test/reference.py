"""A brute-force reference for the matcher's tests: what a valid match is, checked by trying every split and every role."""

import itertools

from mmoshard.matchmaking.data import ROLES
from mmoshard.matchmaking.matcher import window


def teamRolesOk(spec, members):
    """@return: True when C{members} can fill one team's quotas exactly, each playing one of its roles."""
    if len(members) != spec.team_size:
        return False
    if not spec.quotas:
        return True
    choices = [[r for r in m.roles if r in spec.quotas] for m in members]
    for pick in itertools.product(*choices):
        if all(pick.count(r) == spec.quotas.get(r, 0) for r in ROLES):
            return True
    return False


def splits(spec, tickets):
    """@return: every assignment of C{tickets} to teams (a tuple of team indices) whose teams fill the quotas."""
    out = []
    for teams in itertools.product(range(spec.teams), repeat=len(tickets)):
        ok = all(teamRolesOk(spec, [m for t, tk in zip(teams, tickets) if t == team for m in tk.members])
                 for team in range(spec.teams))
        if ok:
            out.append(teams)
    return out


def teamGap(spec, tickets, teams):
    """@return: the difference between the highest and lowest team rating (the members' mean)."""
    means = []
    for team in range(spec.teams):
        rs = [m.rating for t, tk in zip(teams, tickets) if t == team for m in tk.members]
        means.append(sum(rs) / len(rs))
    return max(means) - min(means)


def isValidMatch(spec, tickets, now):
    """
    @return: True when C{tickets} (oldest first) can be one match: every
        member placed, quotas exact, parties whole; rated, every ticket
        within the window of the oldest and some split's teams within it.
    """
    ids = [m.character_id for t in tickets for m in t.members]
    if len(set(ids)) != len(ids) or len(ids) != spec.teams * spec.team_size:
        return False
    options = splits(spec, tickets)
    if not options:
        return False
    if not spec.rated:
        return True
    oldest = tickets[0]
    w = window(spec, now - oldest.created)
    if any(abs(t.rating - oldest.rating) > w + 1e-9 for t in tickets):
        return False
    return min(teamGap(spec, tickets, s) for s in options) <= w + 1e-9


def validMatches(spec, tickets, now):
    """@return: every valid match among C{tickets} (oldest first) as a tuple of indices, in lexicographic order."""
    out = []
    most = spec.teams * spec.team_size
    for k in range(1, len(tickets) + 1):
        for combo in itertools.combinations(range(len(tickets)), k):
            if sum(len(tickets[i].members) for i in combo) != most:
                continue
            if isValidMatch(spec, [tickets[i] for i in combo], now):
                out.append(combo)
    return sorted(out)


def couldJoin(spec, starving, other, now):
    """
    @return: True when ticket C{other} could take a place in a match of
        C{starving}: in a one-team queue, both fit one team together;
        rated, C{other} is within the starving ticket's window.
    """
    if spec.rated and abs(other.rating - starving.rating) > window(spec, now - starving.created) + 1e-9:
        return False
    if spec.teams > 1:
        return True
    members = list(starving.members) + list(other.members)
    if len(members) > spec.team_size:
        return False
    if not spec.quotas:
        return True
    choices = [[r for r in m.roles if r in spec.quotas] for m in members]
    for pick in itertools.product(*choices):
        if all(pick.count(r) <= spec.quotas[r] for r in spec.quotas):
            return True
    return False


def matchProblems(spec, match, byId, now):
    """@return: what is wrong with C{match} (a list of strings; empty: nothing)."""
    problems = []
    tickets = [byId[t] for t in match.tickets]
    if match.queue != spec.name:
        problems.append(f"queue {match.queue!r}")
    if [t.created for t in tickets] != sorted(t.created for t in tickets):
        problems.append("tickets not oldest first")
    members = {m.character_id: (t, m) for t in tickets for m in t.members}
    placed = [s.character_id for s in match.slots]
    if sorted(placed) != sorted(members) or len(set(placed)) != len(placed):
        problems.append(f"slots {placed} are not the members {sorted(members)}")
        return problems
    teamOf = {}
    for s in match.slots:
        ticket, member = members[s.character_id]
        if s.ticket_id != ticket.id:
            problems.append(f"{s.character_id} placed from ticket {s.ticket_id}, not {ticket.id}")
        if teamOf.setdefault(ticket.id, s.team) != s.team:
            problems.append(f"party {ticket.id} split")
        if not 0 <= s.team < spec.teams:
            problems.append(f"team {s.team}")
        if spec.quotas and s.role not in member.roles:
            problems.append(f"{s.character_id} plays {s.role}, not one of {member.roles}")
        if not spec.quotas and s.role != member.roles[0]:
            problems.append(f"{s.character_id} plays {s.role}, not its first role")
    for team in range(spec.teams):
        inTeam = [s for s in match.slots if s.team == team]
        if len(inTeam) != spec.team_size:
            problems.append(f"team {team} has {len(inTeam)} members")
        for role, count in spec.quotas.items():
            if sum(1 for s in inTeam if s.role == role) != count:
                problems.append(f"team {team} has not {count} {role}")
    if spec.rated and not problems:
        teams = tuple(teamOf[t.id] for t in tickets)
        w = window(spec, now - tickets[0].created)
        for t in tickets:
            if abs(t.rating - tickets[0].rating) > w + 1e-9:
                problems.append(f"{t.id} rated {t.rating} is outside +/-{w} of {tickets[0].rating}")
        gap = teamGap(spec, tickets, teams)
        best = min(teamGap(spec, tickets, s) for s in splits(spec, tickets))
        if gap > w + 1e-9:
            problems.append(f"teams {gap} apart, more than the window {w}")
        if gap > best + 1e-9:
            problems.append(f"teams {gap} apart where {best} could be")
    return problems
