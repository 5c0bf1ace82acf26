"""Character leases in the volatile store: a character is live in one world process only."""

from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.store.volatile import Script


def leaseKey(characterId):
    return f"world:lease:{int(characterId)}"


def ticketValue(ticket):
    return f"xfer:{ticket}"


def _acquire(view, keys, args):
    owner, ttl, ticket = args[0], int(args[1]) / 1000, args[2]
    held = view.get(keys[0])
    if held is None or held == owner or (ticket and held == ticket):
        view.set(keys[0], owner, ttl=ttl)
        return None
    return held


def _handoff(view, keys, args):
    if view.get(keys[0]) != args[0]:
        return 0
    view.set(keys[0], args[1], ttl=int(args[2]) / 1000)
    return 1


def _refresh(view, keys, args):
    owner, ttl = args[0], int(args[1]) / 1000
    lost = []
    for i, key in enumerate(keys):
        if view.get(key) == owner:
            view.expire(key, ttl)
        else:
            lost.append(i + 1)
    return lost


def _release(view, keys, args):
    n = 0
    for key in keys:
        if view.get(key) == args[0]:
            n += view.delete(key)
    return n


# Take the lease when free, already ours, or handed to us by a transfer
# ticket (ARGV[3] is "xfer:<ticket>" or ""); else return who holds it.
ACQUIRE = Script(
    name="world_lease_acquire",
    lua=(
        "local h = redis.call('GET', KEYS[1]) "
        "if (not h) or h == ARGV[1] or (ARGV[3] ~= '' and h == ARGV[3]) then "
        "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return false end "
        "return h"
    ),
    python=_acquire,
)
# Give our lease to a transfer ticket, only if it is still ours.
HANDOFF = Script(
    name="world_lease_handoff",
    lua=(
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
        "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1"
    ),
    python=_handoff,
)
# Extend every lease still ours in one round trip; return the 1-based
# positions of those that are not (expired during an outage, taken).
REFRESH = Script(
    name="world_lease_refresh",
    lua=(
        "local lost = {} "
        "for i, k in ipairs(KEYS) do "
        "if redis.call('GET', k) == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]) "
        "else lost[#lost + 1] = i end end "
        "return lost"
    ),
    python=_refresh,
)
RELEASE = Script(
    name="world_lease_release",
    lua=(
        "local n = 0 "
        "for _, k in ipairs(KEYS) do "
        "if redis.call('GET', k) == ARGV[1] then n = n + redis.call('DEL', k) end end "
        "return n"
    ),
    python=_release,
)


class CharacterBusy(Exception):
    """The character is live in another process (C{holder}) or mid-transfer."""

    def __init__(self, holder):
        super().__init__(f"character lease held by {holder}")
        self.holder = holder


class Leases:
    """
    The leases of one world process, all owned under its node id.  Within
    the process, which session drives a character is the service's business.
    """

    # Keys per refresh script call: bounded so one call never blocks Redis long.
    BATCH = 1000

    def __init__(self, volatile, owner, ttl):
        self.volatile = volatile
        self.owner = owner
        self.ttl = ttl
        self.held = set()

    @property
    def millis(self):
        return int(self.ttl * 1000)

    async def acquire(self, characterId, ticket=None):
        """@raise CharacterBusy: when another process holds the character."""
        held = await self.volatile.evalScript(
            ACQUIRE, [leaseKey(characterId)],
            [self.owner, self.millis, ticketValue(ticket) if ticket else ""],
        )
        if held is not None:
            raise CharacterBusy(held.decode("utf-8", "replace"))
        self.held.add(characterId)

    async def handoff(self, characterId, ticket, ttl):
        """Give the lease to transfer C{ticket} for C{ttl} seconds. @return: True if it was ours."""
        self.held.discard(characterId)
        done = await self.volatile.evalScript(
            HANDOFF, [leaseKey(characterId)], [self.owner, ticketValue(ticket), int(ttl * 1000)]
        )
        return bool(done)

    async def refresh(self):
        """Extend every held lease. @return: the character ids whose lease is no longer ours."""
        ids = list(self.held)
        lost = []
        for start in range(0, len(ids), self.BATCH):
            chunk = ids[start:start + self.BATCH]
            missing = await self.volatile.evalScript(
                REFRESH, [leaseKey(c) for c in chunk], [self.owner, self.millis]
            )
            lost.extend(chunk[int(i) - 1] for i in missing or ())
        return lost

    async def release(self, *characterIds):
        for c in characterIds:
            self.held.discard(c)
        for start in range(0, len(characterIds), self.BATCH):
            chunk = characterIds[start:start + self.BATCH]
            await self.volatile.evalScript(RELEASE, [leaseKey(c) for c in chunk], [self.owner])


class LeaseKeeper:
    """
    The world's side of its leases: taken on enter, refreshed while the
    players are live (a player whose lease is lost is kicked), handed to a
    transfer ticket, released on leave and at stop.
    """

    log = Logger()

    def __init__(self, leases, roster):
        """
        @param leases: the process's L{Leases}.
        @param roster: the L{Roster} a player whose lease is lost leaves.
        """
        self.leases = leases
        self.roster = roster

    def acquire(self, characterId, ticket=None):
        """@raise CharacterBusy: when another process holds the character."""
        return self.leases.acquire(characterId, ticket)

    def release(self, *characterIds):
        """@raise StoreError: when the store is unreachable (the leases then run out)."""
        return self.leases.release(*characterIds)

    def handoff(self, characterId, ticket, ttl):
        """Give the lease to transfer C{ticket} for C{ttl} seconds. @return: True if it was ours."""
        return self.leases.handoff(characterId, ticket, ttl)

    async def refresh(self):
        """Extend every lease; kick the players whose lease is no longer ours."""
        try:
            lost = await self.leases.refresh()
        except StoreError as e:
            self.log.warn("lease refresh failed: {why}", why=e)
            return
        roster = self.roster
        for cid in lost:
            player = roster.byCharacter.get(cid)
            if player is None:
                continue
            self.log.error("lease of character {character_id} lost: taking it out of {zone}",
                           character_id=cid, zone=player.zone.id)
            player.session.send("world.kicked", {"reason": "lease lost"}, replayable=True)
            roster.detach(player)

    async def releaseAll(self):
        """Release every lease still held (at stop); a failure is logged: they run out."""
        held = list(self.leases.held)
        if not held:
            return
        try:
            await self.leases.release(*held)
        except StoreError as e:
            self.log.warn("releasing {count} leases at stop failed: {why}", count=len(held), why=e)
