"""Contracts between the game roles: zone chat, parties, progression, the interest space."""

from zope.interface import Attribute, Interface


class IZoneChannels(Interface):
    """
    Chat's zone channels, which the world role joins players to.  Provided by
    the chat role, else by the core (L{mmoshard.zonechat.StoreZoneChannels});
    works across processes through the volatile store.
    """

    def joinZone(characterId, zoneId):
        """
        Put character C{characterId} in the channel of zone C{zoneId}.

        @return: a Deferred firing with None.
        """

    def leaveZone(characterId, zoneId):
        """@return: a Deferred firing with None once the character left."""


class IParties(Interface):
    """Read access to chat's parties, for other roles (world today)."""

    def partyOf(characterId):
        """
        @return: a Deferred firing with the party id (str) of C{characterId},
            or None.
        """

    def members(partyId):
        """
        @return: a Deferred firing with the party's member character ids,
            leader first, or an empty list when the party does not exist.
        """

    def partiesOf(characterIds):
        """
        The parties of many characters at once, in a fixed number of round
        trips however many they are (matchmaking reads a batch of
        C{mm.queue} leaders' parties with one call).

        @return: a Deferred firing with a dict: character id -> (party id,
            its member ids leader first; empty when the party no longer
            exists), for those of C{characterIds} in a party.
        """


class IProgression(Interface):
    """Persistent character progression, written through at once."""

    def grantExp(characterId, amount, idempotencyKey):
        """
        Add C{amount} exp, applying level-ups, in one transaction.  A second
        call with the same C{idempotencyKey} changes nothing.

        @return: a Deferred firing with the character's (level, exp) after it.
        """

    def addItem(characterId, itemId, count, idempotencyKey, slot=None, stack=None):
        """
        Add C{count} of C{itemId} to the inventory, idempotently: into
        C{slot} when given, else onto the item's stacks and then into the
        first empty slots.  With C{stack} (the item's stack size) no slot
        holds more than that.  All or nothing: fails with C{ValueError}
        (C{InventoryFull} when there is no room, C{BadSlot}) adding nothing.

        @return: a Deferred firing with the (first) slot the items went to.
        """

    def removeItem(characterId, itemId, count, idempotencyKey):
        """
        Remove C{count} of C{itemId}, idempotently; fails with
        C{ValueError} when the character has fewer.

        @return: a Deferred firing with the count left.
        """

    def moveItem(characterId, fromSlot, toSlot, idempotencyKey):
        """
        Move (or swap) the items in two inventory slots, idempotently;
        fails with C{BadSlot} (a C{ValueError}) for a slot out of range.

        @return: a Deferred firing with None.
        """

    def useItem(characterId, slot, itemId, idempotencyKey):
        """
        Take one C{itemId} from C{slot} (a consumable being used), in one
        transaction with its ledger row; fails with C{NoSuchItem} (a
        C{ValueError}) when the slot holds none, C{BadSlot} when out of range.

        @return: a Deferred firing with C{(applied, left)}: C{applied} is
            True when this call took the item, False when an earlier call
            with the same key did (the caller must then NOT apply the
            item's effect again); C{left} is the count the slot held after
            the first call.
        """

    def destroyItem(characterId, slot, count, idempotencyKey):
        """
        Destroy C{count} of what C{slot} holds (C{None}: the whole stack),
        idempotently; fails with C{NoSuchItem} when the slot is empty or
        holds fewer, C{BadSlot} when out of range.

        @return: a Deferred firing with C{(itemId, left)}, left in the slot
            (the first call's result on a retry).
        """

    def inventory(characterId):
        """@return: a Deferred firing with {slot: (item id, count)}, slots in order."""


class IInstances(Interface):
    """
    Instances of the templates of etc/instances.toml (docs/instances.md),
    provided by the world role in every process hosting it: any caller (the
    matchmaker in another process, a world.instance.enter handler) reaches
    the world process that hosts or will host the copy through the volatile
    store.  Every call answers within its timeout.
    """

    def create(template, roster, partyId=None, teams=None, matchId=None):
        """
        Make a new instance of C{template} on the least-loaded world process
        offering it, for the characters C{roster} (a list of ids).  A
        matchmade copy passes C{matchId} (the match id, str) and, for a
        template played team against team (an arena), C{teams}: a list of
        lists of character ids, one per team; the world reports the
        outcome of such a copy through L{IMatchResults}.

        @return: a Deferred firing with a
            L{mmoshard.world.instances.data.Placement}, or failing with
            L{mmoshard.world.instances.errors.InstanceError}:
            C{instance.unknown_template}, C{instance.no_capacity} (no process
            offers it or all are full), C{instance.unavailable} (no answer in
            time).
        """

    def close(instanceId):
        """
        Close instance C{instanceId}: everyone inside is sent back to where
        they entered from first.  @return: a Deferred firing with None.
        """

    def list():
        """
        @return: a Deferred firing with the open instances of the
            deployment, each a dict {instance_id, template, node, players,
            created_at}.
        """

    def locate(instanceId):
        """
        Where open instance C{instanceId} lives.  An open instance whose
        host died is re-created (adopted) with the same id, its killed
        bosses dead, by exactly one world process, the least loaded
        offering its template.

        @return: a Deferred firing with a
            L{mmoshard.world.instances.data.Placement} without tickets, or
            None when the instance is closed, closing or unknown; or failing
            with L{mmoshard.world.instances.errors.InstanceError}:
            C{instance.no_capacity}, C{instance.unavailable} (its host died
            less than a host TTL ago, with C{retry_after}; no answer in time).
        """

    def reopen(instanceId):
        """
        As L{locate}, and a closed instance on which a lockout still runs
        (a character's saved copy, C{instance_lockouts.reset_at} in the
        future) is re-opened with the same id, as an adoption: its killed
        bosses dead, its trash back, C{max_duration} counted from now.

        @return: a Deferred firing with a
            L{mmoshard.world.instances.data.Placement} without tickets, or
            None when the instance is unknown, or closed with no lockout
            running on it; or failing as L{locate} does
            (C{instance.unavailable} with C{retry_after} while it closes).
        """

    def admit(ticket, characterId):
        """
        Take admission ticket C{ticket} (of a Placement's C{tickets}) for
        character C{characterId}: a ticket admits once, its own character
        only (another character's attempt leaves it in place).

        @return: a Deferred firing with the instance id, or failing with
            L{mmoshard.world.instances.errors.InstanceError}:
            C{instance.bad_ticket} (unknown, used, expired or another
            character's), C{instance.unavailable}.
        """


class ILocator(Interface):
    """
    Who is where (docs/matchmaking.md "Who is where"): for a character, the
    node and session it speaks through per kind of role, and the node,
    zone and instance it plays in.  Provided by the core of every node,
    kept in the volatile store with TTL'd entries that the node refreshing
    them keeps alive, so a crashed node's entries vanish by themselves.
    """

    def bind(characterId, kind, sessionId):
        """
        Record that character C{characterId} speaks through session
        C{sessionId} of this node for role C{kind} ("chat", "world",
        "matchmaking"), until L{unbind}; refreshed while the node lives.

        @return: a Deferred firing with None.
        """

    def unbind(characterId, kind, sessionId):
        """
        Forget C{bind(characterId, kind, sessionId)}, if still current (a
        newer binding by another session or node stays).

        @return: a Deferred firing with None.
        """

    def place(characterId, zone, instanceId=None):
        """
        Record that character C{characterId} plays in C{zone} (and instance
        C{instanceId}, or None in the open world) on this node, until
        L{unplace}; refreshed while the node lives.

        @return: a Deferred firing with None.
        """

    def unplace(characterId):
        """
        Forget this node's L{place} of C{characterId} (another node's stays).

        @return: a Deferred firing with None.
        """

    def where(characterId):
        """
        @return: a Deferred firing with a L{mmoshard.locator.Location}, or
            None when no live node knows the character.
        """


class IMatchResults(Interface):
    """
    Outcomes of matchmade team-against-team copies (arenas), reported by the
    world and applied to the persistent ratings per character per queue
    (docs/matchmaking.md "Ratings").  Provided by the core of every node
    (SQL), so the reporting world process needs no matchmaking role.
    """

    def report(matchId, queue, teams, winner):
        """
        Apply the result of match C{matchId} of queue C{queue}: C{teams} a
        list of lists of character ids, C{winner} the index of the winning
        team, or None for a draw.  Exactly once per C{matchId}: a second
        report changes nothing.

        @return: a Deferred firing with {character id: new rating}.
        """

    def ratings(queue, characterIds):
        """
        @return: a Deferred firing with {character id: L{mmoshard.ratings.Rating}}
            for C{characterIds} in C{queue}, the initial rating for those
            never rated.
        """


class IInterestSpace(Interface):
    """
    One zone's area of interest and replication state: where each entity
    is, what each observer sees, and the updates a tick sends.  Two
    implementations pass the same contract tests: the pure-Python
    L{mmoshard.world.interest.PySpace} and the C
    L{mmoshard.world._space.Space}.

    An entity has C{id} (uint32), C{x}, C{z}, C{vx}, C{vz}, C{ct} and
    C{session} (an L{ISession} for observers, else None) and a C{slot}
    attribute the space owns.  An observer sees what lies within C{radius}
    of it and stops seeing it beyond C{radius + hysteresis}.  Synchronous:
    nothing here blocks or returns a Deferred.
    """

    native = Attribute("True for the C implementation, False for PySpace.")

    def add(entity):
        """
        Put C{entity} in the space at its C{(x, z)}; it is an observer when
        its C{session} is not None.  It sees nothing until it is recomputed
        (pass it in C{forced} to the next L{update}).

        @raise ValueError: C{entity} is already in the space.
        @raise OverflowError: its id does not fit in uint32.
        """

    def remove(entity):
        """
        Take C{entity} out.  Observers that saw it get its id as a leave in
        their next update; as an observer it forgets everything it saw.
        """

    def move(entity):
        """
        C{entity}'s C{x}, C{z}, C{vx}, C{vz} or C{ct} changed: the space
        takes them now (a later change counts only with another C{move}),
        and the move record of the newest C{move} of the tick goes to the
        observers that see it in the next L{replicate}.

        @raise ValueError: C{entity} is not in the space.
        """

    def moved():
        """@return: a list of the entities moved since the last L{replicate}."""

    def event(entity, record):
        """
        Append C{record} (bytes: one or more packed combat records,
        L{mmoshard.world.combat.records}) to what happened to C{entity} this
        tick.  The next L{replicate} gives it to every observer that sees
        C{entity} and to C{entity} itself when it is an observer, in the
        C{c} field of its C{world.u}; the records of one entity keep their
        order, those of different entities come in any order.  An observer
        with records and nothing else still gets an update.

        @raise ValueError: C{entity} is not in the space.
        @raise TypeError: C{record} is not bytes.
        """

    def update(tick, interval, forced):
        """
        Recompute the visible sets of the observers due at C{tick} (those
        in cells C{c} with C{c % interval == tick % interval}) and of the
        observers in the iterable C{forced}, recording enters and leaves.
        """

    def replicate():
        """
        Collect this tick's updates and clear the moved entities.

        @return: C{(sends, others, movesBytes)}: C{sends} a list of
            C{(session, payload)} with the encoded C{world.u} of each
            observer that only has moves of what it already sees;
            C{others} a list of C{(entity, enters, leaves, moves, events)}
            for the observers with enters or leaves (lists of ids; C{moves}
            the packed records of the moved entities it sees and did not just
            enter, or C{b""}; C{events} its combat records, or C{b""});
            C{movesBytes} the size of the packed moves and records in
            C{sends}.  An update in C{sends} is C{{"t": "world.u", "m": moves}}
            with C{"c": events} when it has any (and no C{"m"} when it has
            no moves).
        """

    def reset(entity):
        """Observer C{entity} forgets what it sees and has pending (a resumed session)."""

    def visible(entity):
        """@return: the set of ids observer C{entity} sees."""

    def watchers(entity):
        """@return: the set of observer entities that see C{entity}."""

    def cell(entity):
        """@return: the grid cell index of C{entity}, -1 when not in the space."""

    def pairs():
        """@return: the number of (observer, visible entity) pairs."""
