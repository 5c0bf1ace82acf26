"""Character leases in the volatile store: a character is live in one world process only."""

from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.store.slots import everyBatch, slotBatches
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
    owner, ttl, retake = args[0], int(args[1]) / 1000, args[2] == b"1"
    changed = []
    for i, key in enumerate(keys):
        held = view.get(key)
        if held == owner:
            view.expire(key, ttl)
        elif held is None and retake:
            view.set(key, owner, ttl=ttl)
            changed.append(-(i + 1))
        else:
            changed.append(i + 1)
    return changed


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
# Extend every lease still ours in one round trip.  A lease that is absent
# is taken back when ARGV[3] is "1" (GET and SET in one script: atomic, as
# SET NX); its negated 1-based position is returned.  The positions of the
# others (taken by another node or a ticket, or absent without ARGV[3]) are
# returned as they are: those are lost.
REFRESH = Script(
    name="world_lease_refresh",
    lua=(
        "local changed = {} "
        "for i, k in ipairs(KEYS) do "
        "local h = redis.call('GET', k) "
        "if h == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]) "
        "elseif (not h) and ARGV[3] == '1' then "
        "redis.call('SET', k, ARGV[1], 'PX', ARGV[2]) changed[#changed + 1] = -i "
        "else changed[#changed + 1] = i end end "
        "return changed"
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

    async def refresh(self, retake=False):
        """
        Extend every held lease; with C{retake}, take back those absent
        from the store (nobody holds them).

        @return: C{(lost, retaken)}: the character ids whose lease is held
            by another node or a ticket (or absent, without C{retake}),
            and those taken back.
        """
        ids = list(self.held)
        lost = []
        retaken = []
        flag = "1" if retake else "0"
        # One batch per hash slot on a Redis Cluster, per BATCH leases elsewhere;
        # all sent at once.
        chunks = slotBatches(self.volatile, ids, leaseKey, self.BATCH)
        replies = await everyBatch(chunks, lambda chunk: self.volatile.evalScript(
            REFRESH, [leaseKey(c) for c in chunk], [self.owner, self.millis, flag]))
        for chunk, changed in zip(chunks, replies):
            for i in changed or ():
                i = int(i)
                if i < 0:
                    retaken.append(chunk[-i - 1])
                else:
                    lost.append(chunk[i - 1])
        return lost, retaken

    async def release(self, *characterIds):
        for c in characterIds:
            self.held.discard(c)
        await everyBatch(slotBatches(self.volatile, characterIds, leaseKey, self.BATCH),
                         lambda chunk: self.volatile.evalScript(
                             RELEASE, [leaseKey(c) for c in chunk], [self.owner]))


class LeaseKeeper:
    """
    The world's side of its leases: taken on enter, refreshed while the
    players are live, handed to a transfer ticket, released on leave and
    at stop.

    A refresh that finds a lease held by another node (or a ticket) kicks
    its player.  One it finds absent was lost by the store (a Redis
    restart, a flush) when this node last confirmed its leases less than
    a TTL ago: none could have run out, so nobody else can have had the
    character since; it is taken back and the player plays on.  After a
    longer outage the lease may have run out, and another node may have
    taken and released the character meanwhile: the player is kicked.
    """

    log = Logger()

    def __init__(self, leases, roster, clock):
        """
        @param leases: the process's L{Leases}.
        @param roster: the L{Roster} a player whose lease is lost leaves.
        @param clock: the reactor (when the leases were last confirmed).
        """
        self.leases = leases
        self.roster = roster
        self.clock = clock
        # Every held lease was set at or after this time: at first none is held.
        self.confirmed = clock.seconds()

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
        """Extend every lease, take back those the store lost, kick the players whose lease is another's."""
        started = self.clock.seconds()
        retake = started - self.confirmed < self.leases.ttl
        try:
            lost, retaken = await self.leases.refresh(retake)
        except StoreError as e:
            self.log.warn("lease refresh failed: {why}", why=e)
            return
        self.confirmed = started
        if retaken:
            self.log.warn("leases of {count} characters were missing from the volatile store "
                          "(restarted?) and are taken back: {character_ids}",
                          count=len(retaken), character_ids=",".join(map(str, sorted(retaken))))
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
