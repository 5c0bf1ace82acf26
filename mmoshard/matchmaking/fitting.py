"""Role arithmetic of the matcher: what a ticket can fill in a team, whether the waiting tickets can complete a match, who plays what."""

import attrs

from mmoshard.matchmaking.data import ROLES

# The one dimension of a queue without quotas: any role fills any place.
ANY = "any"


@attrs.frozen
class Shape:
    """
    A queue's teams as vectors: C{dims} the roles counted (or C{(ANY,)}),
    C{quota} the exact count of each in one team, C{teams} the number of
    teams.  A team's state is a tuple of counts, one per dim; a match's
    state is a tuple of C{teams} team states.
    """

    dims: tuple
    quota: tuple
    teams: int

    @property
    def size(self):
        return sum(self.quota)

    @property
    def empty(self):
        return (tuple(0 for _ in self.dims),) * self.teams

    @property
    def full(self):
        return (self.quota,) * self.teams

    def roleSet(self, roles):
        """@return: the sorted dim indices a member with C{roles} can play (all of them in a queue without quotas)."""
        if self.dims == (ANY,):
            return (0,)
        return tuple(i for i, dim in enumerate(self.dims) if dim in roles)

    def roleName(self, dim, roles):
        """@return: the role a member with C{roles} plays in place C{dim}."""
        if self.dims == (ANY,):
            return roles[0] if roles else ROLES[-1]
        return self.dims[dim]


def shapeOf(spec):
    """@return: the L{Shape} of a L{mmoshard.matchmaking.data.QueueSpec}."""
    if spec.quotas:
        dims = tuple(r for r in ROLES if spec.quotas.get(r))
        return Shape(dims, tuple(spec.quotas[r] for r in dims), spec.teams)
    return Shape((ANY,), (spec.team_size,), spec.teams)


def options(shape, roleSets):
    """
    What a ticket whose members can play C{roleSets} (one tuple of dim
    indices each) may fill of one team: every vector of counts per dim
    reachable by giving each member one of its roles, within the quota.

    @return: a tuple of vectors, most of the first dims first (a member
        who may tank tanks when that completes a match: the scarce roles
        are the early ones), empty when the ticket fits no team.
    """
    quota = shape.quota
    reach = {tuple(0 for _ in quota)}
    for roleSet in roleSets:
        nxt = set()
        for v in reach:
            for i in roleSet:
                if v[i] < quota[i]:
                    nxt.add(v[:i] + (v[i] + 1,) + v[i + 1:])
        reach = nxt
        if not reach:
            return ()
    return tuple(sorted(reach, reverse=True))


def assign(roleSets, vector):
    """
    @return: one dim index per member (each in its role set) whose counts
        are exactly C{vector}, or None when there is none.
    """
    failed = set()

    def go(i, left):
        if i == len(roleSets):
            return () if not any(left) else None
        if (i, left) in failed:
            return None
        for dim in roleSets[i]:
            if left[dim]:
                rest = go(i + 1, left[:dim] + (left[dim] - 1,) + left[dim + 1:])
                if rest is not None:
                    return (dim,) + rest
        failed.add((i, left))
        return None

    return go(0, tuple(vector))


def add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def fitsIn(team, vector, quota):
    return all(t + v <= q for t, v, q in zip(team, vector, quota))


def place(state, vector, team):
    """@return: C{state} with C{vector} added to team C{team}."""
    return state[:team] + (add(state[team], vector),) + state[team + 1:]


def teamsFor(shape, state, vector):
    """@return: the teams C{vector} fits in, the first of equal team states only."""
    seen = set()
    out = []
    for t, team in enumerate(state):
        if team not in seen and fitsIn(team, vector, shape.quota):
            seen.add(team)
            out.append(t)
    return out


def _need(shape, state):
    """@return: the places still open in C{state}, per dim, summed over the teams."""
    return tuple(shape.teams * q - sum(team[i] for team in state) for i, q in enumerate(shape.quota))


class Completion:
    """
    Whether the waiting tickets can complete a match, by class: a class is
    the tickets of one size and one set of options (interchangeable for
    filling places).  Answers are cached by state and the counts of each
    class capped at what one match could use, so a queue with plenty of
    every kind answers from the cache.
    """

    def __init__(self, shape, classes):
        """
        @param classes: a list of (size, options, roleSet or None): the
            role set when the class is solo players.
        """
        self.shape = shape
        self.sizes = [size for size, _, _ in classes]
        self.opts = [opts for _, opts, _ in classes]
        members = shape.teams * shape.size
        self.caps = [members // size for size in self.sizes]
        # The DFS tries big parties first: solos are what fills the gaps.
        self.order = sorted(range(len(classes)), key=lambda c: (-self.sizes[c], c))
        self.solos = [(c, sum(1 << d for d in roleSet)) for c, (_, _, roleSet) in enumerate(classes)
                      if roleSet is not None]
        self.cache = {}

    def canonical(self, state):
        return tuple(sorted(state)) if self.shape.teams > 1 else state

    def possible(self, state, counts):
        """@return: True when tickets within C{counts} (per class) can fill every open place of C{state} exactly."""
        need = _need(self.shape, state)
        if self._solosSuffice(need, counts):
            return True
        key = (self.canonical(state), tuple(min(n, cap) for n, cap in zip(counts, self.caps)))
        answer = self.cache.get(key)
        if answer is None:
            answer = self.cache[key] = self._search(state, counts)
        return answer

    def _solosSuffice(self, need, counts):
        """Hall's condition for the solo players alone: every set of roles has enough players who can play one of them."""
        dims = len(need)
        for mask in range(1, 1 << dims):
            want = sum(need[i] for i in range(dims) if mask >> i & 1)
            if want == 0:
                continue
            have = 0
            for c, bits in self.solos:
                if bits & mask:
                    have += counts[c]
            if have < want:
                return False
        return True

    def _search(self, state, counts):
        shape = self.shape
        counts = [min(n, cap) for n, cap in zip(counts, self.caps)]
        order = self.order
        n = len(order)
        left = [0] * (n + 1)  # members available in the classes order[k:]
        for k in range(n - 1, -1, -1):
            c = order[k]
            left[k] = left[k + 1] + counts[c] * self.sizes[c]
        failed = set()

        def go(k, taken, state):
            need = shape.teams * shape.size - sum(map(sum, state))
            if need == 0:
                return True
            if k == n:
                return False
            c = order[k]
            avail = left[k + 1] + (counts[c] - taken) * self.sizes[c]
            if avail < need:
                return False
            key = (k, taken, self.canonical(state))
            if key in failed:
                return False
            if taken < counts[c] and self.sizes[c] <= need:
                for v in self.opts[c]:
                    for t in teamsFor(shape, state, v):
                        if go(k, taken + 1, place(state, v, t)):
                            return True
            if go(k + 1, 0, state):
                return True
            failed.add(key)
            return False

        return go(0, 0, state)


def bestSplit(shape, parts, ratings):
    """
    Put the tickets of a rated match into its two teams, each filling the
    quota exactly, with the team ratings (the members' means) as close as
    can be.

    @param parts: one (size, options) per ticket, the anchor first (it
        stays in team 0).
    @param ratings: the sum of each ticket's members' ratings.
    @return: (gap, teams, vectors): the team of each ticket and the
        vector it fills, or None when no split fills the quota.
    """
    k = len(parts)
    best = None
    # 2^(k-1) splits: fine for the small matches rated queues play (2v2,
    # 3v3, 5v5 of solos); a bigger one keeps the split it was formed with.
    if k > 14:
        return None
    for mask in range(1 << (k - 1)):
        teams = (0,) + tuple((mask >> i) & 1 for i in range(k - 1))
        sizes = [0, 0]
        for t, (size, _) in zip(teams, parts):
            sizes[t] += size
        if sizes[0] != shape.size or sizes[1] != shape.size:
            continue
        vectors = _fill(shape, parts, teams)
        if vectors is None:
            continue
        sums = [0.0, 0.0]
        for t, r in zip(teams, ratings):
            sums[t] += r
        gap = abs(sums[0] - sums[1]) / shape.size
        if best is None or gap < best[0]:
            best = (gap, teams, vectors)
    return best


def _fill(shape, parts, teams):
    """@return: a vector per ticket filling each team's quota exactly, or None."""
    out = [None] * len(parts)
    for team in (0, 1):
        members = [i for i, t in enumerate(teams) if t == team]

        def go(j, state):
            if j == len(members):
                return state == shape.quota
            i = members[j]
            for v in parts[i][1]:
                if fitsIn(state, v, shape.quota):
                    out[i] = v
                    if go(j + 1, add(state, v)):
                        return True
            return False

        if not go(0, tuple(0 for _ in shape.quota)):
            return None
    return out


def arrange(shape, parts):
    """
    Give each ticket of a complete match a team and the vector it fills.

    @param parts: one (size, options) per ticket, the anchor first (it
        goes in team 0).
    @return: (teams, vectors), one each per ticket.
    @raise ValueError: when the tickets cannot fill the teams exactly.
    """
    failed = set()
    teams, vectors = [0] * len(parts), [None] * len(parts)

    def go(i, state):
        if i == len(parts):
            return state == shape.full
        if (i, state) in failed:
            return False
        for v in parts[i][1]:
            for t in ((0,) if i == 0 else teamsFor(shape, state, v)):
                teams[i], vectors[i] = t, v
                if go(i + 1, place(state, v, t)):
                    return True
        failed.add((i, state))
        return False

    if not go(0, shape.empty):
        raise ValueError(f"tickets {parts} cannot fill {shape}")
    return teams, vectors
