"""The pure matcher: from a queue's waiting tickets, the matches to propose (docs/matchmaking.md "Order and fairness")."""

import bisect
import functools
import itertools

import attrs

from mmoshard.matchmaking.data import Match, QueueSpec, Slot
from mmoshard.matchmaking.fitting import (
    Completion, arrange, assign, bestSplit, fitsIn, options, place, shapeOf, teamsFor,
)

INF = float("inf")
# What became of a ticket in a pass.
FREE, USED, HELD = 0, 1, 2
# When the oldest tickets around a rated ticket make teams too far apart:
# how many of the oldest in its window are tried together, and how many
# sets of them at most.
BALANCE_CANDIDATES = 12
BALANCE_TRIES = 2000


def window(spec, wait):
    """@return: the rating window (+/-) of a rated queue for a ticket that has waited C{wait} seconds."""
    return min(spec.window_start + spec.window_widen * max(0.0, wait), spec.window_cap)


def fits(spec, members):
    """
    @return: True when a ticket of C{members} (L{Member}s) can take places
        in one team of C{spec}: no more members than a team holds, no
        character twice, and roles that the quotas leave room for.
    """
    ids = [m.character_id for m in members]
    if not members or len(members) > spec.team_size or len(set(ids)) != len(ids):
        return False
    return _rolesFit(spec.teams, spec.team_size, tuple(sorted(spec.quotas.items())),
                     tuple(m.roles for m in members))


# Every mm.queue asks: few queues and role mixes, so their answers are kept.
@functools.lru_cache(maxsize=4096)
def _rolesFit(teams, teamSize, quotas, roles):
    shape = shapeOf(QueueSpec("", "", teams=teams, team_size=teamSize, quotas=dict(quotas)))
    return bool(options(shape, tuple(shape.roleSet(r) for r in roles)))


def formMatches(spec, tickets, now, limit=None):
    """
    Form matches from the waiting tickets of queue C{spec}.  Pure and
    deterministic: the same tickets and C{now} give the same matches.

    Quotas are exact in every team, a ticket's members all play in one
    team, each in one of its roles; the oldest ticket that can be matched
    is matched first, with the oldest tickets that complete its match; a
    ticket that has waited C{spec.starvation_s} and cannot be matched holds
    back every younger ticket that could complete its match; a rated
    queue matches tickets within the window of the oldest one, into
    balanced teams.  A ticket that could never fit a team, or names a
    character an older ticket has, is left alone.

    @param tickets: the queue's waiting L{Ticket}s, oldest first.
    @param now: the current time (epoch seconds), for waits.
    @param limit: at most this many matches (None: as many as can be made).
    @return: a list of L{Match}, in the order they were formed.
    """
    return _Matcher(spec, now).run(tickets, limit)


@attrs.define
class _Entry:
    """A ticket taken into the matcher: its age order, class and rating."""

    ticket: object
    order: int
    cls: int
    rating: float  # the ticket's members' mean
    total: float  # the sum of its members' ratings
    roleSets: tuple


class _Fifo:
    """
    One class's waiting tickets of an unrated queue, oldest first: the
    matcher only ever takes the oldest, so a pointer does.
    """

    def __init__(self, entries):
        self.orders = [e.order for e in entries]
        self.head = 0

    def remove(self, order):
        assert self.orders[self.head] == order
        self.head += 1

    def oldest(self, lo, hi):
        return self.orders[self.head] if self.head < len(self.orders) else None

    def count(self, lo, hi):
        return len(self.orders) - self.head


class _Index:
    """
    One class's waiting tickets sorted by rating, with a segment tree of
    (oldest age order, count) over them: the oldest ticket and the count
    within a rating range, and removal, in O(log n).
    """

    def __init__(self, entries):
        entries = sorted(entries, key=lambda e: (e.rating, e.order))
        self.ratings = [e.rating for e in entries]
        self.orders = [e.order for e in entries]
        self.position = {o: i for i, o in enumerate(self.orders)}
        n = len(entries)
        size = 1
        while size < n:
            size *= 2
        self.size = size
        self.mins = [INF] * (2 * size)
        self.counts = [0] * (2 * size)
        for i, o in enumerate(self.orders):
            self.mins[size + i] = o
            self.counts[size + i] = 1
        for node in range(size - 1, 0, -1):
            self._pull(node)

    def _pull(self, node):
        a, b = 2 * node, 2 * node + 1
        self.mins[node] = min(self.mins[a], self.mins[b])
        self.counts[node] = self.counts[a] + self.counts[b]

    def _set(self, order, there):
        mins, counts = self.mins, self.counts
        node = self.size + self.position[order]
        mins[node] = order if there else INF
        counts[node] = 1 if there else 0
        node //= 2
        while node:
            a = 2 * node
            x, y = mins[a], mins[a + 1]
            mins[node] = x if x < y else y
            counts[node] = counts[a] + counts[a + 1]
            node //= 2

    def remove(self, order):
        self._set(order, False)

    def restore(self, order):
        self._set(order, True)

    def _span(self, lo, hi):
        if lo == -INF and hi == INF:
            return 0, len(self.orders)
        return bisect.bisect_left(self.ratings, lo), bisect.bisect_right(self.ratings, hi)

    def oldest(self, lo, hi):
        """@return: the age order of the oldest ticket rated within [lo, hi], or None."""
        l, r = self._span(lo, hi)
        if l == 0 and r == len(self.orders):
            best = self.mins[1]
        else:
            best, l, r = INF, l + self.size, r + self.size
            while l < r:
                if l & 1:
                    best = min(best, self.mins[l])
                    l += 1
                if r & 1:
                    r -= 1
                    best = min(best, self.mins[r])
                l //= 2
                r //= 2
        return None if best == INF else best

    def count(self, lo, hi):
        """@return: how many tickets are rated within [lo, hi]."""
        l, r = self._span(lo, hi)
        if l == 0 and r == len(self.orders):
            return self.counts[1]
        total, l, r = 0, l + self.size, r + self.size
        while l < r:
            if l & 1:
                total += self.counts[l]
                l += 1
            if r & 1:
                r -= 1
                total += self.counts[r]
            l //= 2
            r //= 2
        return total

    def within(self, lo, hi):
        """@return: the age orders of the tickets rated within [lo, hi]."""
        l, r = self._span(lo, hi)
        return [self.orders[i] for i in range(l, r) if self.counts[self.size + i]]


class _Matcher:
    """One call of L{formMatches}: the tickets indexed by class, the matches formed so far."""

    def __init__(self, spec, now):
        self.spec = spec
        self.now = now
        self.shape = shapeOf(spec)
        self.rated = spec.rated

    def run(self, tickets, limit):
        self._take(tickets)
        matches = []
        for order, entry in enumerate(self.entries):
            if limit is not None and len(matches) >= limit:
                break
            if self.free[order] == USED:
                continue
            if self.free[order] == FREE and not self.dead[entry.cls]:
                match = self._around(entry)
                if match is not None:
                    matches.append(match)
                    continue
                self._failed(entry)
            if self.now - entry.ticket.created >= self.spec.starvation_s:
                self._hold(entry)
        return matches

    # --- the index ------------------------------------------------------------

    def _take(self, tickets):
        shape = self.shape
        seen = set()
        # class key -> class; members' roles (in order) -> (class, role sets)
        classOf, byRoles, classes, members = {}, {}, [], {}
        self.entries = entries = []
        most = shape.size
        for ticket in sorted(tickets, key=lambda t: t.created):
            group = ticket.members
            if len(group) == 1:
                cid = group[0].character_id
                if cid in seen:
                    continue
                ids = (cid,)
                roles = (group[0].roles,)
            else:
                ids = tuple(m.character_id for m in group)
                if not ids or len(ids) > most or len(set(ids)) != len(ids) or not seen.isdisjoint(ids):
                    continue
                roles = tuple(m.roles for m in group)
            known = byRoles.get(roles)
            if known is None:
                known = byRoles[roles] = self._classify(roles, classOf, classes)
            cls, sets = known
            if cls is None:
                continue  # fits no team
            seen.update(ids)
            total = sum(m.rating for m in group)
            entry = _Entry(ticket, len(entries), cls, total / len(ids), total, sets)
            entries.append(entry)
            members.setdefault(cls, []).append(entry)
        self.classes = classes
        self.sizes = [size for size, _, _ in classes]
        self.opts = [opts for _, opts, _ in classes]
        kind = _Index if self.rated else _Fifo
        self.indexes = [kind(members[c]) for c in range(len(classes))]
        self.completion = Completion(shape, classes)
        # (state, class) -> what a ticket of the class makes of the state:
        # the same few steps come back for every match of a pass.
        self.steps = {}
        self.free = bytearray(len(self.entries))  # FREE, USED or HELD per entry
        self.dead = [False] * len(classes)  # unrated: no ticket of the class plays in this pass
        self.holding = [False] * len(classes)  # unrated: the class's starving tickets hold others

    def _classify(self, roles, classOf, classes):
        """@return: (class, role sets) of a ticket whose members have C{roles}, the class None when it fits no team."""
        shape = self.shape
        sets = tuple(shape.roleSet(r) for r in roles)
        opts = options(shape, tuple(sorted(sets)))
        if not opts:
            return None, sets
        key = (len(sets), opts)
        cls = classOf.get(key)
        if cls is None:
            cls = classOf[key] = len(classes)
            classes.append((len(sets), opts, sets[0] if len(sets) == 1 else None))
        return cls, sets

    # --- one match ------------------------------------------------------------

    def _window(self, entry):
        return window(self.spec, self.now - entry.ticket.created)

    def _around(self, anchor):
        """@return: a L{Match} holding C{anchor}, its tickets taken from the pool, or None."""
        if not self.rated:
            picked = self._select(anchor, -INF, INF)
            return None if picked is None else self._build(picked, None)
        w = self._window(anchor)
        lo, hi = anchor.rating - w, anchor.rating + w
        picked = self._select(anchor, lo, hi)
        if picked is None:
            return None
        match = self._build(picked, w)
        if match is not None:
            return match
        for entry in picked:
            self.indexes[entry.cls].restore(entry.order)
        picked = self._balanced(anchor, lo, hi, w)
        return None if picked is None else self._build(picked, w)

    def _balanced(self, anchor, lo, hi, w):
        """
        The oldest tickets that complete C{anchor}'s match gave teams too
        far apart: look among the oldest few in the window for the oldest
        set whose teams are within it.

        @return: the picked entries (removed from the index), or None.
        """
        found = []
        for c, index in enumerate(self.indexes):
            for _ in range(BALANCE_CANDIDATES):
                order = index.oldest(lo, hi)
                if order is None:
                    break
                index.remove(order)
                found.append(order)
        for order in found:
            self.indexes[self.entries[order].cls].restore(order)
        if anchor.order in found:
            found.remove(anchor.order)
        found = sorted(found)[:BALANCE_CANDIDATES]
        need = self.shape.teams * self.shape.size - self.sizes[anchor.cls]
        tried = 0
        for k in range(1, len(found) + 1):
            for combo in itertools.combinations(found, k):
                entries = [anchor] + [self.entries[o] for o in combo]
                if sum(self.sizes[e.cls] for e in entries[1:]) != need:
                    continue
                tried += 1
                if tried > BALANCE_TRIES:
                    return None
                parts = [(self.sizes[e.cls], self.opts[e.cls]) for e in entries]
                best = bestSplit(self.shape, parts, [e.total for e in entries])
                if best is not None and best[0] <= w:
                    for e in entries:
                        self.indexes[e.cls].remove(e.order)
                    return entries
        return None

    def _select(self, anchor, lo, hi):
        """
        Pick the tickets of one match around C{anchor}, within ratings
        [lo, hi]: at each step the oldest ticket that still lets the match
        complete.  What the picked tickets may fill is kept as the set of
        states they can reach (a member who may tank or heal has not
        chosen yet), so an older ticket is never turned away for a choice
        made too early.  The picked tickets are removed from the index.

        @return: the picked entries, C{anchor} first, or None.
        """
        shape, opts, indexes = self.shape, self.opts, self.indexes
        completion = self.completion
        counts = [0 if self.dead[c] else indexes[c].count(lo, hi) for c in range(len(self.classes))]
        counts[anchor.cls] -= 1
        states = self._grow({shape.empty}, anchor.cls, counts)
        if not states:
            return None
        indexes[anchor.cls].remove(anchor.order)
        picked = [anchor]
        full = completion.canonical(shape.full)
        open_ = shape.teams * shape.size - self.sizes[anchor.cls]
        # The oldest ticket of each class, oldest first.
        heads = sorted((indexes[c].oldest(lo, hi), c) for c in range(len(counts)) if counts[c] > 0)
        while open_:
            for i, (order, c) in enumerate(heads):
                if self.sizes[c] > open_:
                    continue
                counts[c] -= 1
                grown = self._grow(states, c, counts)
                if grown:
                    states = grown
                    indexes[c].remove(order)
                    picked.append(self.entries[order])
                    open_ -= self.sizes[c]
                    del heads[i]
                    if counts[c] > 0:
                        bisect.insort(heads, (indexes[c].oldest(lo, hi), c))
                    break
                counts[c] += 1
            else:  # pragma: no cover - Completion said the match could be completed
                raise AssertionError(f"queue {self.spec.name}: cannot complete {states}")
        assert full in states
        return picked

    def _grow(self, states, c, counts):
        """@return: the states reachable by adding a ticket of class C{c} to one of C{states} that can still complete."""
        possible = self.completion.possible
        steps = self.steps
        out = set()
        for state in states:
            nexts = steps.get((state, c))
            if nexts is None:
                nexts = steps[(state, c)] = self._steps(state, c)
            for nxt in nexts:
                if nxt not in out and possible(nxt, counts):
                    out.add(nxt)
        return out

    def _steps(self, state, c):
        """@return: the states (canonical) a ticket of class C{c} may make of C{state}, whatever is left to come."""
        shape, canonical = self.shape, self.completion.canonical
        return tuple(dict.fromkeys(canonical(place(state, v, t))
                                   for v in self.opts[c] for t in teamsFor(shape, state, v)))

    def _build(self, picked, w):
        """@return: the L{Match} of C{picked} (balanced when rated), or None when its teams are too far apart."""
        shape = self.shape
        parts = [(self.sizes[e.cls], self.opts[e.cls]) for e in picked]
        best = bestSplit(shape, parts, [e.total for e in picked]) if self.rated else None
        if best is not None:
            gap, teams, vectors = best
        else:
            teams, vectors = arrange(shape, parts)
            gap = _gap(shape, picked, teams)
        if self.rated and gap > w:
            return None
        for entry in picked:
            self.free[entry.order] = USED
        ordered = sorted(range(len(picked)), key=lambda i: picked[i].order)
        slots = []
        for team in range(shape.teams):
            for i in ordered:
                if teams[i] != team:
                    continue
                entry = picked[i]
                dims = assign(entry.roleSets, vectors[i])
                for member, dim in zip(entry.ticket.members, dims):
                    slots.append(Slot(member.character_id, entry.ticket.id,
                                      shape.roleName(dim, member.roles), team))
        return Match(queue=self.spec.name, tickets=tuple(picked[i].ticket.id for i in ordered),
                     slots=tuple(slots))

    # --- a ticket that cannot be matched ---------------------------------------

    def _failed(self, anchor):
        """
        C{anchor} cannot be matched in this pass.  Unrated, no ticket of
        its class can (they are interchangeable); rated, no younger
        ticket's match may hold it (its own window, the widest, found none
        around it).
        """
        if not self.rated:
            self.dead[anchor.cls] = True
            return
        self.indexes[anchor.cls].remove(anchor.order)
        self.free[anchor.order] = HELD

    def _hold(self, starving):
        """
        C{starving} waited past C{starvation_s} and is not matched in this
        pass: every younger ticket that could complete its match is held
        back for it (nobody younger may take its place), whether or not it
        is held itself for an older one.
        """
        if not self.rated:
            if self.holding[starving.cls]:
                return  # its class holds the same tickets already
            self.holding[starving.cls] = True
            for c in range(len(self.classes)):
                if not self.dead[c] and self._joins(starving.cls, c):
                    self.dead[c] = True
            return
        w = self._window(starving)
        for c in range(len(self.classes)):
            if self._joins(starving.cls, c):
                index = self.indexes[c]
                for order in index.within(starving.rating - w, starving.rating + w):
                    if order > starving.order:
                        index.remove(order)
                        self.free[order] = HELD

    def _joins(self, a, b):
        """@return: True when a ticket of class C{b} could take a place in a match of a ticket of class C{a}."""
        if self.shape.teams > 1:
            return True
        quota = self.shape.quota
        return any(fitsIn(va, vb, quota) for va in self.opts[a] for vb in self.opts[b])


def _gap(shape, picked, teams):
    sums = [0.0] * shape.teams
    for entry, t in zip(picked, teams):
        sums[t] += entry.total
    return (max(sums) - min(sums)) / shape.size
