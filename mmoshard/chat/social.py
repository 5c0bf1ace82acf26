"""Friends, friend requests, blocks and mutes in SQL, and the character lookups chat needs."""

import attrs
from twisted.internet.defer import Deferred

from mmoshard.audit import txnEvent
from mmoshard.batching import Batcher, keyed
from mmoshard.store.errors import IntegrityError
from mmoshard.store.sql import placeholders


@attrs.frozen
class CharacterRow:
    """A character as chat sees it."""

    id: int
    account_id: int
    name: str
    is_operator: bool


@attrs.frozen
class SocialState:
    """What chat loads for a character at hello."""

    friends: tuple  # of (id, name)
    blocks: tuple  # of (id, name)
    incoming: tuple  # friend requests to the character: (id, name)
    outgoing: tuple  # friend requests it sent: (id, name)
    muted_until: float | None
    mute_reason: str | None


# Outcomes of a friend request.
SENT = "sent"
ACCEPTED = "accepted"  # the other side had asked already: now friends
ALREADY = "already_friends"
TOO_MANY = "too_many"
SILENT = "silent"  # the target blocks the sender: looks like SENT to it


def _txn_characters(cursor, ids):
    """@return: character id -> L{CharacterRow} of the live characters of C{ids}."""
    rows = cursor.execute(
        "SELECT c.id, c.account_id, c.name, a.is_operator FROM characters c "
        "JOIN accounts a ON a.id = c.account_id "
        f"WHERE c.id IN ({placeholders(len(ids))}) AND c.deleted_at IS NULL",
        tuple(ids),
    ).fetchall()
    return {int(r[0]): CharacterRow(int(r[0]), int(r[1]), r[2], bool(r[3])) for r in rows}


def _txn_characterByName(cursor, name):
    row = cursor.execute(
        "SELECT c.id, c.account_id, c.name, a.is_operator FROM characters c "
        "JOIN accounts a ON a.id = c.account_id "
        "WHERE c.name_lower = ? AND c.deleted_at IS NULL",
        (name.lower(),),
    ).fetchone()
    if row is None:
        return None
    return CharacterRow(int(row[0]), int(row[1]), row[2], bool(row[3]))


def _namesOf(cursor, sql, ids):
    """@return: owner id -> ((id, name), ...) in the order of C{sql}, whose rows are (owner, id, name)."""
    out = {}
    for r in cursor.execute(sql, tuple(ids)).fetchall():
        out.setdefault(int(r[0]), []).append((int(r[1]), r[2]))
    return {owner: tuple(names) for owner, names in out.items()}


def _txn_loadSocial(cursor, ids, now):
    """@return: character id -> its L{SocialState}, for every one of C{ids}: five queries whatever their number."""
    marks = placeholders(len(ids))
    friends = _namesOf(
        cursor,
        "SELECT f.character_id, c.id, c.name FROM chat_friends f "
        "JOIN characters c ON c.id = f.friend_id "
        f"WHERE f.character_id IN ({marks}) AND c.deleted_at IS NULL "
        "ORDER BY f.character_id, c.name_lower",
        ids,
    )
    blocks = _namesOf(
        cursor,
        "SELECT b.character_id, c.id, c.name FROM chat_blocks b "
        "JOIN characters c ON c.id = b.blocked_id "
        f"WHERE b.character_id IN ({marks}) ORDER BY b.character_id, c.name_lower",
        ids,
    )
    incoming = _namesOf(
        cursor,
        "SELECT r.to_id, c.id, c.name FROM chat_friend_requests r "
        "JOIN characters c ON c.id = r.from_id "
        f"WHERE r.to_id IN ({marks}) AND c.deleted_at IS NULL ORDER BY r.to_id, r.created_at",
        ids,
    )
    outgoing = _namesOf(
        cursor,
        "SELECT r.from_id, c.id, c.name FROM chat_friend_requests r "
        "JOIN characters c ON c.id = r.to_id "
        f"WHERE r.from_id IN ({marks}) AND c.deleted_at IS NULL ORDER BY r.from_id, r.created_at",
        ids,
    )
    mutes = {
        int(r[0]): (float(r[1]), r[2])
        for r in cursor.execute(
            "SELECT character_id, muted_until, reason FROM chat_mutes "
            f"WHERE character_id IN ({marks}) AND muted_until > ?",
            (*ids, now),
        ).fetchall()
    }
    return {
        cid: SocialState(
            friends.get(cid, ()), blocks.get(cid, ()), incoming.get(cid, ()),
            outgoing.get(cid, ()), *mutes.get(cid, (None, None)),
        )
        for cid in ids
    }


def _txn_isBlocked(cursor, ownerId, otherId):
    """True when C{ownerId} blocks C{otherId}."""
    return (
        cursor.execute(
            "SELECT 1 FROM chat_blocks WHERE character_id = ? AND blocked_id = ?",
            (ownerId, otherId),
        ).fetchone()
        is not None
    )


def _count(cursor, sql, params):
    return int(cursor.execute(sql, params).fetchone()[0])


def _areFriends(cursor, a, b):
    return (
        cursor.execute(
            "SELECT 1 FROM chat_friends WHERE character_id = ? AND friend_id = ?", (a, b)
        ).fetchone()
        is not None
    )


def _makeFriends(cursor, a, b, now):
    cursor.execute(
        "DELETE FROM chat_friend_requests WHERE (from_id = ? AND to_id = ?) "
        "OR (from_id = ? AND to_id = ?)",
        (a, b, b, a),
    )
    cursor.executemany(
        "INSERT INTO chat_friends (character_id, friend_id, created_at) VALUES (?, ?, ?)",
        [(a, b, now), (b, a, now)],
    )


def _friendCount(cursor, characterId):
    return _count(
        cursor, "SELECT COUNT(*) FROM chat_friends WHERE character_id = ?", (characterId,)
    )


def _txn_friendRequest(cursor, fromId, toId, now, maxFriends):
    """Ask C{toId} to be friends; @return: one of the outcome constants."""
    if _txn_isBlocked(cursor, toId, fromId):
        return SILENT
    if _areFriends(cursor, fromId, toId):
        return ALREADY
    if _friendCount(cursor, fromId) >= maxFriends:
        return TOO_MANY
    reverse = cursor.execute(
        "SELECT 1 FROM chat_friend_requests WHERE from_id = ? AND to_id = ?", (toId, fromId)
    ).fetchone()
    if reverse is not None:
        if _friendCount(cursor, toId) >= maxFriends:
            return TOO_MANY
        _makeFriends(cursor, fromId, toId, now)
        return ACCEPTED
    cursor.execute(
        "DELETE FROM chat_friend_requests WHERE from_id = ? AND to_id = ?", (fromId, toId)
    )
    cursor.execute(
        "INSERT INTO chat_friend_requests (from_id, to_id, created_at) VALUES (?, ?, ?)",
        (fromId, toId, now),
    )
    return SENT


def _txn_acceptRequest(cursor, characterId, fromId, now, maxFriends):
    """@return: SENT-less outcome: ACCEPTED, TOO_MANY or None (no such request)."""
    pending = cursor.execute(
        "SELECT 1 FROM chat_friend_requests WHERE from_id = ? AND to_id = ?",
        (fromId, characterId),
    ).fetchone()
    if pending is None:
        return None
    if _areFriends(cursor, characterId, fromId):
        cursor.execute(
            "DELETE FROM chat_friend_requests WHERE from_id = ? AND to_id = ?",
            (fromId, characterId),
        )
        return ALREADY
    if (
        _friendCount(cursor, characterId) >= maxFriends
        or _friendCount(cursor, fromId) >= maxFriends
    ):
        return TOO_MANY
    _makeFriends(cursor, characterId, fromId, now)
    return ACCEPTED


def _txn_declineRequest(cursor, characterId, fromId):
    cursor.execute(
        "DELETE FROM chat_friend_requests WHERE from_id = ? AND to_id = ?",
        (fromId, characterId),
    )
    return cursor.rowcount > 0


def _txn_cancelRequest(cursor, characterId, toId):
    cursor.execute(
        "DELETE FROM chat_friend_requests WHERE from_id = ? AND to_id = ?",
        (characterId, toId),
    )
    return cursor.rowcount > 0


def _txn_removeFriend(cursor, characterId, friendId):
    cursor.execute(
        "DELETE FROM chat_friends WHERE (character_id = ? AND friend_id = ?) "
        "OR (character_id = ? AND friend_id = ?)",
        (characterId, friendId, friendId, characterId),
    )
    return cursor.rowcount > 0


def _txn_block(cursor, characterId, blockedId, now, maxBlocks):
    """
    Block C{blockedId}: ends a friendship and pending requests both ways.

    @return: (added, wereFriends), or None when the block list is full.
    """
    exists = _txn_isBlocked(cursor, characterId, blockedId)
    if not exists and _count(
        cursor, "SELECT COUNT(*) FROM chat_blocks WHERE character_id = ?", (characterId,)
    ) >= maxBlocks:
        return None
    wereFriends = _txn_removeFriend(cursor, characterId, blockedId)
    cursor.execute(
        "DELETE FROM chat_friend_requests WHERE (from_id = ? AND to_id = ?) "
        "OR (from_id = ? AND to_id = ?)",
        (characterId, blockedId, blockedId, characterId),
    )
    if not exists:
        try:
            cursor.execute(
                "INSERT INTO chat_blocks (character_id, blocked_id, created_at) "
                "VALUES (?, ?, ?)",
                (characterId, blockedId, now),
            )
        except IntegrityError:
            exists = True
    return (not exists, wereFriends)


def _txn_unblock(cursor, characterId, blockedId):
    cursor.execute(
        "DELETE FROM chat_blocks WHERE character_id = ? AND blocked_id = ?",
        (characterId, blockedId),
    )
    return cursor.rowcount > 0


def _txn_mute(cursor, characterId, until, reason, mutedBy, now):
    cursor.execute("DELETE FROM chat_mutes WHERE character_id = ?", (characterId,))
    cursor.execute(
        "INSERT INTO chat_mutes (character_id, muted_until, reason, muted_by, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (characterId, until, reason, mutedBy, now),
    )


def _txn_unmute(cursor, characterId):
    cursor.execute("DELETE FROM chat_mutes WHERE character_id = ?", (characterId,))
    return cursor.rowcount > 0


def _txn_audited(cursor, change, audit):
    """Run C{change(cursor)} and append C{audit} (account, kind, ip, now, detail) to the trail."""
    result = change(cursor)
    txnEvent(cursor, *audit)
    return result


class Social:
    """The async face of the chat tables, over the process's L{ISQLStore}."""

    def __init__(self, sql, clock, config):
        self.sql = sql
        self.clock = clock
        self.config = config
        # The hellos of a storm read their rows together: one transaction
        # (one thread hop) for all that arrive while one is out.
        self._characters = Batcher(keyed(lambda ids: sql.runInteraction(_txn_characters, ids)))
        self._loads = Batcher(keyed(
            lambda ids: sql.runInteraction(_txn_loadSocial, ids, clock.seconds())))

    def character(self, characterId):
        """@return: a Deferred firing with the L{CharacterRow} of a live character, or None."""
        return Deferred.fromCoroutine(self._characters.submit(int(characterId)))

    def characterByName(self, name):
        return self.sql.runInteraction(_txn_characterByName, name)

    def load(self, characterId):
        """@return: a Deferred firing with the character's L{SocialState}."""
        return Deferred.fromCoroutine(self._loads.submit(int(characterId)))

    def isBlocked(self, ownerId, otherId):
        return self.sql.runInteraction(_txn_isBlocked, ownerId, otherId)

    def friendRequest(self, fromId, toId):
        return self.sql.runInteraction(
            _txn_friendRequest, fromId, toId, self.clock.seconds(), self.config.max_friends
        )

    def acceptRequest(self, characterId, fromId):
        return self.sql.runInteraction(
            _txn_acceptRequest, characterId, fromId, self.clock.seconds(),
            self.config.max_friends,
        )

    def declineRequest(self, characterId, fromId):
        return self.sql.runInteraction(_txn_declineRequest, characterId, fromId)

    def cancelRequest(self, characterId, toId):
        return self.sql.runInteraction(_txn_cancelRequest, characterId, toId)

    def removeFriend(self, characterId, friendId):
        return self.sql.runInteraction(_txn_removeFriend, characterId, friendId)

    def block(self, characterId, blockedId):
        return self.sql.runInteraction(
            _txn_block, characterId, blockedId, self.clock.seconds(), self.config.max_blocks
        )

    def unblock(self, characterId, blockedId):
        return self.sql.runInteraction(_txn_unblock, characterId, blockedId)

    def mute(self, characterId, until, reason, mutedBy):
        return self.sql.runInteraction(
            _txn_mute, characterId, until, reason, mutedBy, self.clock.seconds()
        )

    def unmute(self, characterId):
        return self.sql.runInteraction(_txn_unmute, characterId)

    def muteAudited(self, characterId, until, reason, audit):
        """
        Mute as an operator on the admin site: the mute and its audit row
        (C{audit}: account id, kind, ip, time, detail) in one transaction.
        """
        now = self.clock.seconds()
        return self.sql.runInteraction(
            _txn_audited, lambda c: _txn_mute(c, characterId, until, reason, None, now), audit)

    def unmuteAudited(self, characterId, audit):
        """Unmute as an operator, with its audit row; @return: whether a mute was lifted."""
        return self.sql.runInteraction(
            _txn_audited, lambda c: _txn_unmute(c, characterId), audit)
