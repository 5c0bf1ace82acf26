"""SQL fixtures for world tests: a migrated database (MariaDB or SQLite) with accounts and characters."""

import os
import tempfile

from mmoshard.store.sql import SQLStore, migrate
from mmoshard.testing import requireMySQL


async def openStore(testCase, reactor, dialect):
    """@return: a migrated L{SQLStore}, closed and dropped at cleanup."""
    if dialect == "mysql":
        url, dropper = requireMySQL()
        testCase.addCleanup(dropper)
    else:
        d = tempfile.mkdtemp()
        url = "sqlite:///" + os.path.join(d, "world.sqlite3")
    store = SQLStore(reactor, url, 1, 4)
    store.open()
    testCase.addCleanup(store.close)
    await migrate(store)
    return store


def insertCharacter(cursor, accountId, name, zone, x, y, z):
    cursor.execute("SELECT id FROM accounts WHERE id = ?", (accountId,))
    if cursor.fetchone() is None:
        cursor.execute(
            "INSERT INTO accounts (id, username, username_lower, password_hash, created_at) "
            "VALUES (?, ?, ?, 'x', 0)",
            (accountId, f"acct{accountId}", f"acct{accountId}"),
        )
    cursor.execute(
        "INSERT INTO characters (account_id, name, name_lower, class, zone, x, y, z, created_at) "
        "VALUES (?, ?, ?, 'warrior', ?, ?, ?, ?, 0)",
        (accountId, name, name.lower(), zone, x, y, z),
    )
    return cursor.lastrowid


def insertCharacters(cursor, accountId, names):
    return [insertCharacter(cursor, accountId, name, "", 0.0, 0.0, 0.0) for name in names]


def makeCharacters(store, accountId, names):
    """@return: a Deferred firing with the new characters' ids, in one transaction."""
    return store.runInteraction(insertCharacters, accountId, names)


def makeCharacter(store, accountId, name, zone="", x=0.0, y=0.0, z=0.0):
    """@return: a Deferred firing with the new character's id."""
    return store.runInteraction(insertCharacter, accountId, name, zone, x, y, z)
