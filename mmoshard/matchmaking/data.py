"""What the matchmaker works on, as frozen values: queue definitions, tickets, their members, proposals."""

import attrs

# The roles a member can play; a class's role comes from etc/classes.toml.
ROLES = ("tank", "healer", "damage")


@attrs.frozen
class QueueSpec:
    """
    One queue of etc/queues.toml (docs/matchmaking.md "Queues").

    C{teams} teams of C{team_size} members each; C{quotas} the exact count
    of each role in one team ({"tank": 1, "healer": 1, "damage": 3}), or
    empty when any role will do (an arena).  A C{rated} queue matches teams
    whose ratings lie within a window of +/- C{window_start} that the
    server widens by C{window_widen} per second of waiting, up to
    C{window_cap}.  C{template} is the instance template played.
    """

    name: str
    template: str
    teams: int = 1
    team_size: int = 5
    quotas: dict = attrs.field(factory=dict)  # role -> count per team
    rated: bool = False
    window_start: float = 50.0
    window_widen: float = 5.0
    window_cap: float = 400.0
    ready_timeout: float = 20.0
    # A ticket waiting this long is matched before any younger one may take
    # a role it needs (docs/matchmaking.md "Order and fairness").
    starvation_s: float = 60.0
    title: str = ""


@attrs.frozen
class Member:
    """One character of a ticket: the roles it may play (chosen or its class's) and its rating in the queue."""

    character_id: int
    roles: tuple  # of ROLES, at least one
    rating: float = 1500.0
    name: str = ""
    cls: str = ""


@attrs.frozen
class Ticket:
    """
    A solo player or a whole party waiting in one queue.  C{created} (epoch
    seconds) orders the queue and survives a requeue; C{node} is the
    matchmaking node whose session took it.
    """

    id: str
    queue: str
    members: tuple  # of Member, the leader first
    created: float
    party_id: str = None
    node: str = ""

    @property
    def characterIds(self):
        return tuple(m.character_id for m in self.members)

    @property
    def rating(self):
        """The ticket's rating: its members' mean."""
        return sum(m.rating for m in self.members) / len(self.members)


@attrs.frozen
class Slot:
    """One member placed in a match: its character, the ticket it came from, the role it plays, its team."""

    character_id: int
    ticket_id: str
    role: str
    team: int = 0


@attrs.frozen
class Match:
    """What the matcher forms from waiting tickets: every member of each ticket used, placed in a team and role."""

    queue: str
    tickets: tuple  # of ticket ids, oldest first
    slots: tuple  # of Slot

    def teams(self, count):
        """@return: a tuple of C{count} tuples of character ids, one per team."""
        return tuple(tuple(s.character_id for s in self.slots if s.team == t) for t in range(count))


@attrs.frozen
class Proposal:
    """
    A match offered to its members for a ready check, as stored in the
    volatile store: who accepted so far, and when it expires (epoch s).
    """

    match_id: str
    queue: str
    tickets: tuple  # of Ticket, as they were when proposed
    slots: tuple  # of Slot
    created: float
    expires_at: float
    accepted: frozenset = frozenset()  # character ids

    @property
    def characterIds(self):
        return tuple(s.character_id for s in self.slots)


@attrs.frozen
class Matched:
    """
    One member's C{mm.matched}, stored with the completion of its match
    (atomically) so that it outlives the node that made the match: answered
    by C{mm.hello} and C{mm.status} until the member entered or it expired.
    """

    character_id: int
    match_id: str
    queue: str
    instance: int  # the instance id (Placement.instance_id)
    template: str
    zone: str
    node: str
    endpoints: tuple  # of (name, address) pairs
    ticket: str  # the member's admission ticket
    team: int
    role: str
    expires_at: float  # epoch s: when the admission ticket and this record run out
