"""An NPC's threat table: who it fights, how much each has angered it, and whom it attacks (taunt included)."""

# A new top must exceed the current target's threat by this factor to pull
# it (WoW's 110 % rule): without it two players with close threat would make
# the NPC turn back and forth every swing.
PULL = 1.1

# What a taunt puts the taunter above the top's threat.
TAUNT_MARGIN = 1.0


class Threat:
    """
    The threat table of one NPC: entity -> threat (>= 0), in the order
    entities were added.  The NPC attacks L{top}: the forced target of a
    running taunt, else its current target until someone else's threat
    exceeds that target's by L{PULL}, else the highest threat (the earliest
    added on a tie).

    @ivar clock: gives the time taunts are measured against.
    """

    __slots__ = ("clock", "table", "target", "forced", "forcedUntil")

    def __init__(self, clock):
        self.clock = clock
        self.table = {}
        self.target = None  # whom top() last returned
        self.forced = None  # the taunter while a taunt runs
        self.forcedUntil = 0.0

    def __len__(self):
        return len(self.table)

    def __contains__(self, entity):
        return entity in self.table

    def __iter__(self):
        return iter(self.table)

    def get(self, entity):
        """@return: C{entity}'s threat (0.0 when it is not on the table)."""
        return self.table.get(entity, 0.0)

    def add(self, entity, amount):
        """Put C{entity} on the table (if absent) and add C{amount} to its threat, never below 0."""
        v = self.table.get(entity, 0.0) + amount
        self.table[entity] = v if v > 0.0 else 0.0

    def top(self):
        """@return: the entity the NPC attacks now, or None when the table is empty."""
        table = self.table
        if not table:
            self.target = None
            return None
        forced = self.forced
        if forced is not None:
            if forced in table and self.clock.seconds() < self.forcedUntil:
                self.target = forced
                return forced
            self.forced = None
        best = max(table, key=table.__getitem__)
        cur = self.target
        if cur is not None and cur is not best and cur in table:
            if table[best] <= table[cur] * PULL:
                return cur
        self.target = best
        return best

    def taunt(self, entity, until):
        """
        C{entity} taunts: its threat becomes the top's threat plus a margin
        (never lower than it was) and the NPC attacks it until C{until}.
        """
        table = self.table
        highest = max(table.values()) if table else 0.0
        own = table.get(entity, 0.0)
        table[entity] = max(own, highest + TAUNT_MARGIN)
        self.forced = entity
        self.forcedUntil = until
        self.target = entity

    def remove(self, entity):
        """Take C{entity} off the table (it died, left, or the NPC forgets it)."""
        self.table.pop(entity, None)
        if self.forced is entity:
            self.forced = None
        if self.target is entity:
            self.target = None

    def clear(self):
        """Forget everyone (death, evade, respawn)."""
        self.table.clear()
        self.target = None
        self.forced = None
        self.forcedUntil = 0.0

    def entries(self):
        """@return: C{[(entity, threat)]}, highest threat first (ties: earliest added first)."""
        return sorted(self.table.items(), key=lambda kv: -kv[1])
