"""Tests for the SQL store, its cursor and the schema migrations, on SQLite and MariaDB."""

import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import gatherResults
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from mmoshard.interfaces import ISQLStore
from mmoshard.store import sql
from mmoshard.store.errors import IntegrityError, SchemaMismatch, SQLUnavailable, StoreNotOpen
from mmoshard.store.sql import (
    Cursor,
    MigrationError,
    SQLStore,
    checkSchema,
    currentVersion,
    migrate,
    parseSQLURL,
)
from mmoshard.testing import freePort, repoRoot, requireMySQL

# Where the mmoshard under test lives: the child processes import it from there.
REPO = Path(repoRoot())


def _txn_addAccount(cursor, username, email=None):
    cursor.execute(
        "INSERT INTO accounts (username, username_lower, email, password_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (username, username.lower(), email, "hash", 1700000000.5),
    )
    return cursor.lastrowid


class StoreContractMixin:
    """ISQLStore behaviour every dialect must share; subclasses give makeURL."""

    timeout = 30

    def makeStore(self, **kwargs):
        store = SQLStore(reactor, self.url, **kwargs)
        store.open()
        self.addCleanup(store.close)
        return store

    def setUp(self):
        self.url = self.makeURL()
        self.store = self.makeStore()

    def unopened(self):
        store = SQLStore(reactor, self.url)
        self.addCleanup(store.close)
        return store

    async def migrated(self):
        await migrate(self.store)
        return self.store

    def test_interface(self):
        """The store provides ISQLStore, opened or not, and knows its dialect."""
        self.assertTrue(verifyObject(ISQLStore, self.store))
        self.assertTrue(verifyObject(ISQLStore, self.unopened()))
        self.assertEqual(self.store.dialect, self.dialect)

    async def test_nothingBeforeOpen(self):
        """Before open() every call fails at once with StoreNotOpen, naming open()."""
        store = self.unopened()
        calls = [
            store.ping,
            lambda: store.runQuery("SELECT 1"),
            lambda: store.runInteraction(lambda cursor: None),
        ]
        for call in calls:
            with self.assertRaises(StoreNotOpen) as cm:
                await call()
            self.assertIn("open()", str(cm.exception))

    async def test_openThenWorks(self):
        """open() returns None, the store answers after it, and a second open() changes nothing."""
        store = self.unopened()
        self.assertIsNone(store.open())
        self.assertIsNone(await store.ping())
        store.open()
        self.assertEqual(await store.runQuery("SELECT 1"), [(1,)])

    async def test_closeBeforeOpen(self):
        """A store never opened closes, and then cannot be opened."""
        store = self.unopened()
        await store.close()
        self.assertRaises(RuntimeError, store.open)
        with self.assertRaises(SQLUnavailable):
            await store.ping()

    async def test_placeholdersAndPercent(self):
        """
        C{?} placeholders bind on both dialects, C{%} in statements and values is kept, executemany
        counts its rows.
        """
        def txn(cursor):
            self.assertIsInstance(cursor, Cursor)
            self.assertEqual(cursor.dialect, self.dialect)
            cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s VARCHAR(64), n INTEGER)")
            cursor.execute("INSERT INTO t (id, s, n) VALUES (?, ?, ?)", (1, "100% ?", 7))
            cursor.execute("INSERT INTO t (id, s, n) VALUES (2, '50% off?', ?)", (3,))
            cursor.executemany(
                "INSERT INTO t (id, s, n) VALUES (?, ?, ?)",
                [(3, "a%", 1), (4, "%b", 2)],
            )
            self.assertEqual(cursor.rowcount, 2)
            rows = cursor.execute(
                "SELECT s, n % 5 FROM t WHERE s LIKE ? ESCAPE '!' ORDER BY id", ("%!%%",)
            ).fetchall()
            return rows

        rows = await self.store.runInteraction(txn)
        self.assertEqual(rows, [("100% ?", 2), ("50% off?", 3), ("a%", 1), ("%b", 2)])
        self.assertEqual(
            await self.store.runQuery("SELECT n FROM t WHERE s = ?", ("a%",)), [(1,)]
        )
        self.assertEqual(await self.store.runQuery("SELECT COUNT(*) FROM t"), [(4,)])

    async def test_commitAndRollback(self):
        """
        A transaction commits when its function returns and rolls back when it raises, the
        exception reaching the caller.
        """
        await self.store.runInteraction(
            lambda c: c.execute("CREATE TABLE t (n INTEGER NOT NULL)")
        )

        def insert(cursor, n, explode):
            cursor.execute("INSERT INTO t (n) VALUES (?)", (n,))
            if explode:
                raise ZeroDivisionError("boom")
            return cursor.rowcount

        self.assertEqual(await self.store.runInteraction(insert, 1, explode=False), 1)
        with self.assertRaises(ZeroDivisionError):
            await self.store.runInteraction(insert, 2, explode=True)
        self.assertEqual(await self.store.runQuery("SELECT n FROM t"), [(1,)])

    async def test_fetchoneAndLastrowid(self):
        """lastrowid gives the new row's id, fetchone a row and then None."""
        await self.migrated()
        first = await self.store.runInteraction(_txn_addAccount, "Alice")
        second = await self.store.runInteraction(_txn_addAccount, "Bob")
        self.assertEqual(second, first + 1)

        def txn(cursor):
            cursor.execute("SELECT username, email FROM accounts WHERE id = ?", (first,))
            return cursor.fetchone(), cursor.fetchone()

        self.assertEqual(await self.store.runInteraction(txn), (("Alice", None), None))

    async def test_integrityErrorOnDuplicateUsername(self):
        """
        A duplicate unique key fails with IntegrityError naming the key, and the transaction leaves
        nothing.
        """
        await self.migrated()
        await self.store.runInteraction(_txn_addAccount, "Bob")
        with self.assertRaises(IntegrityError) as cm:
            await self.store.runInteraction(_txn_addAccount, "bOB")
        self.assertIn("username_lower", str(cm.exception))
        # the failed transaction left nothing behind
        self.assertEqual(await self.store.runQuery("SELECT username FROM accounts"), [("Bob",)])

    async def test_integrityErrorCaughtThreadSide(self):
        """A thread-side function can catch IntegrityError and go on."""
        await self.migrated()

        def txn(cursor):
            _txn_addAccount(cursor, "carol")
            try:
                _txn_addAccount(cursor, "Carol")
            except IntegrityError:
                _txn_addAccount(cursor, "carol2")
            return cursor.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]

        self.assertEqual(await self.store.runInteraction(txn), 2)

    async def test_foreignKeys(self):
        """
        A row pointing at a missing parent fails with IntegrityError: foreign keys are enforced.
        """
        await self.migrated()

        def txn(cursor):
            cursor.execute(
                "INSERT INTO characters (account_id, name, name_lower, class, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (424242, "Ghost", "ghost", "mage", 1.0),
            )

        with self.assertRaises(IntegrityError):
            await self.store.runInteraction(txn)

    async def test_migrateFromEmpty(self):
        """
        migrate() applies every migration in order on an empty database, records them, makes the
        tables with their defaults, and does nothing the second time.
        """
        latest = sql.latestVersion(self.dialect)
        self.assertEqual(await currentVersion(self.store), 0)
        applied = await migrate(self.store)
        self.assertEqual([m.version for m in applied], list(range(1, latest + 1)))
        self.assertEqual(await currentVersion(self.store), latest)
        self.assertEqual(await checkSchema(self.store), latest)
        rows = await self.store.runQuery(
            "SELECT version, name, applied_at FROM schema_version ORDER BY version"
        )
        self.assertEqual([r[1] for r in rows], [m.name for m in applied])
        self.assertLess(abs(rows[0][2] - time.time()), 60)
        # the tables exist, with their defaults
        aid = await self.store.runInteraction(_txn_addAccount, "Dave")

        def character(cursor):
            cursor.execute(
                "INSERT INTO characters (account_id, name, name_lower, class, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (aid, "Hero", "hero", "warrior", 2.5),
            )
            return cursor.execute(
                "SELECT level, exp, zone, x, deleted_at FROM characters"
            ).fetchone()

        self.assertEqual(await self.store.runInteraction(character), (1, 0, "", 0.0, None))
        # idempotent
        self.assertEqual(await migrate(self.store), [])
        self.assertEqual(await currentVersion(self.store), latest)

    async def test_checkSchemaBehind(self):
        """
        checkSchema() refuses a database behind the code, saying which versions and the command to
        run.
        """
        await self.migrated()
        latest = sql.latestVersion(self.dialect)
        await self.store.runQuery("DELETE FROM schema_version WHERE version = ?", (latest,))
        with self.assertRaises(SchemaMismatch) as cm:
            await checkSchema(self.store)
        self.assertEqual(
            str(cm.exception),
            f"database schema is at version {latest - 1}, this code needs {latest}: "
            "run `mmoshard migrate --config ...`",
        )
        with self.assertRaises(SchemaMismatch) as cm:
            await checkSchema(self.store, configPath="etc/mmoshard.toml")
        self.assertIn("mmoshard migrate --config etc/mmoshard.toml", str(cm.exception))

    async def test_checkSchemaBehindNewMigration(self):
        """A code upgrade bringing a new migration: behind, then migrated."""
        await self.migrated()
        latest = sql.latestVersion(self.dialect)
        root = Path(self.mktemp())
        shutil.copytree(sql.DEFAULT_MIGRATIONS_DIR, root)
        (root / f"{latest + 1:04d}_pets.sql").write_text(
            "-- a shared migration\nCREATE TABLE pets (\n  id INTEGER NOT NULL PRIMARY KEY,\n"
            "  note VARCHAR(20) DEFAULT '100%?'\n);\nINSERT INTO pets (id) VALUES (1);\n"
        )
        store = self.makeStore(migrationsDir=root)
        with self.assertRaises(SchemaMismatch) as cm:
            await checkSchema(store)
        self.assertIn(f"is at version {latest}, this code needs {latest + 1}", str(cm.exception))
        applied = await migrate(store)
        self.assertEqual([m.name for m in applied], [f"{latest + 1:04d}_pets"])
        self.assertEqual(await checkSchema(store), latest + 1)
        self.assertEqual(await store.runQuery("SELECT note FROM pets"), [("100%?",)])

    async def test_failedMigration(self):
        """A failing file is reported by name and statement, and not recorded."""
        await self.migrated()
        latest = sql.latestVersion(self.dialect)
        root = Path(self.mktemp())
        shutil.copytree(sql.DEFAULT_MIGRATIONS_DIR, root)
        (root / f"{latest + 1:04d}_broken.sql").write_text(
            "CREATE TABLE ok1 (id INTEGER);\nCREATE TABLE accounts (id INTEGER);\n"
        )
        store = self.makeStore(migrationsDir=root)
        with self.assertRaises(MigrationError) as cm:
            await migrate(store)
        self.assertIn(f"{latest + 1:04d}_broken: statement 2 failed", str(cm.exception))
        self.assertEqual(await currentVersion(store), latest)

    async def test_checkSchemaAhead(self):
        """
        checkSchema() and migrate() refuse a database newer than the code, asking for an upgrade.
        """
        await self.migrated()
        latest = sql.latestVersion(self.dialect)
        await self.store.runQuery(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (999, "0999_future", 1.0),
        )
        message = (
            f"database schema version 999 is newer than this code ({latest}): "
            "upgrade mmoshard"
        )
        with self.assertRaises(SchemaMismatch) as cm:
            await checkSchema(self.store)
        self.assertEqual(str(cm.exception), message)
        with self.assertRaises(SchemaMismatch) as cm:
            await migrate(self.store)
        self.assertEqual(str(cm.exception), message)

    async def test_concurrentInteractions(self):
        """Many interactions at once all complete, each with its own row."""
        await self.migrated()
        ids = await _gather(
            [self.store.runInteraction(_txn_addAccount, f"user{i}") for i in range(20)]
        )
        self.assertEqual(len(set(ids)), 20)
        self.assertEqual(await self.store.runQuery("SELECT COUNT(*) FROM accounts"), [(20,)])

    async def test_ping(self):
        """ping() fires with None when the database answers."""
        self.assertIsNone(await self.store.ping())

    async def test_closed(self):
        """close() is idempotent and a closed store fails with SQLUnavailable."""
        await self.store.close()
        await self.store.close()  # idempotent
        with self.assertRaises(SQLUnavailable):
            await self.store.ping()

    async def test_closeWaitsForRunning(self):
        """close() lets a running interaction finish first."""
        d = self.store.runQuery("SELECT 1")
        await self.store.close()
        self.assertEqual(await d, [(1,)])

    async def runCLI(self, *args):
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "mmoshard.cli", *args],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            path=str(REPO),
        )
        return out.decode(), err.decode(), code

    async def test_cliMigrate(self):
        """
        C{mmoshard migrate} applies the migrations, --status reports up to date, a second run has
        nothing to apply.
        """
        latest = sql.latestVersion(self.dialect)
        out, err, code = await self.runCLI("migrate", "--sql-url", self.url)
        self.assertEqual(code, 0, err)
        self.assertIn("applied 0001_accounts_characters (version 1)", out)
        self.assertIn(f"schema version {latest}, up to date", out)
        self.assertEqual(await checkSchema(self.store), latest)
        out, err, code = await self.runCLI("migrate", "--sql-url", self.url, "--status")
        self.assertEqual(code, 0, err)
        self.assertIn(f"schema version {latest}, up to date", out)
        out, err, code = await self.runCLI("migrate", "--sql-url", self.url)
        self.assertEqual(code, 0, err)
        self.assertIn("nothing to apply", out)

    async def test_cliStatusBehindAndAhead(self):
        """
        C{mmoshard migrate --status} lists what is pending; a database ahead of the code fails with
        one line.
        """
        out, err, code = await self.runCLI("migrate", "--status", "--sql-url", self.url)
        self.assertEqual(code, 0, err)
        self.assertIn("schema version 0, this code needs", out)
        self.assertIn("pending: 0001_accounts_characters", out)
        await self.migrated()
        await self.store.runQuery(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'x', 0)"
        )
        out, err, code = await self.runCLI("migrate", "--sql-url", self.url)
        self.assertEqual(code, 1)
        self.assertIn("newer than this code", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)


async def _gather(deferreds):
    return [await d for d in deferreds]


class SQLiteStoreTests(StoreContractMixin, TestCase):
    dialect = "sqlite"

    def makeURL(self):
        # a missing parent directory is made
        # absolute, so the CLI subprocess (run from the repository) finds it
        return "sqlite:///" + os.path.abspath(os.path.join(self.mktemp(), "sub", "db.sqlite3"))

    def test_oneConnection(self):
        """SQLite always gets one connection, whatever the pool size asked."""
        store = self.makeStore(minConnections=3, maxConnections=10)
        self.assertEqual((store._pool.min, store._pool.max), (1, 1))

    def test_directoryMadeByOpen(self):
        """The database file's missing directory is made by open(), not by the constructor."""
        path = os.path.abspath(os.path.join(self.mktemp(), "later", "db.sqlite3"))
        self.url = "sqlite:///" + path
        store = self.unopened()
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        store.open()
        self.assertTrue(os.path.isdir(os.path.dirname(path)))

    async def test_pragmas(self):
        """Every SQLite connection gets WAL, foreign keys and the busy timeout."""
        def txn(cursor):
            return [
                cursor.execute(f"PRAGMA {p}").fetchone()[0]
                for p in ("journal_mode", "foreign_keys", "busy_timeout")
            ]

        self.assertEqual(await self.store.runInteraction(txn), ["wal", 1, 5000])

    async def test_absolutePath(self):
        """A sqlite://// URL opens the absolute path."""
        path = os.path.abspath(os.path.join(self.mktemp(), "abs.sqlite3"))
        self.url = "sqlite:///" + path
        self.assertTrue(self.url.startswith("sqlite:////"))
        await migrate(self.makeStore())
        self.assertTrue(os.path.exists(path))

    async def test_memory(self):
        """sqlite:///:memory: works as a private in-memory database."""
        self.url = "sqlite:///:memory:"
        store = self.makeStore()
        await migrate(store)
        self.assertEqual(await checkSchema(store), sql.latestVersion("sqlite"))

    async def test_unopenable(self):
        # a directory where the database file should be
        """A path SQLite cannot open (a directory) fails with SQLUnavailable."""
        path = self.mktemp()
        os.makedirs(path)
        self.url = "sqlite:///" + path
        with self.assertRaises(SQLUnavailable):
            await self.makeStore().ping()

    async def test_otherProcessSeesCommits(self):
        """Committed rows are visible to another connection to the file at once."""
        await self.migrated()
        await self.store.runInteraction(_txn_addAccount, "erin")
        conn = sqlite3.connect(parseSQLURL(self.url).path)
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("SELECT username FROM accounts").fetchall(), [("erin",)])


class MySQLStoreTests(StoreContractMixin, TestCase):
    dialect = "mysql"

    def makeURL(self):
        url, dropper = requireMySQL()
        self.addCleanup(dropper)
        return url

    async def test_recoversFromKilledConnection(self):
        """A connection the server dropped (restart, idle timeout) is replaced."""
        import pymysql

        store = self.makeStore(minConnections=1, maxConnections=1)
        connectionId = (await store.runQuery("SELECT CONNECTION_ID()"))[0][0]
        u = parseSQLURL(self.url)
        admin = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password or "")
        self.addCleanup(admin.close)
        with admin.cursor() as cur:
            cur.execute(f"KILL {int(connectionId)}")
        again = (await store.runQuery("SELECT CONNECTION_ID()"))[0][0]
        self.assertNotEqual(again, connectionId)
        self.assertIsNone(await store.ping())

    async def test_connectionLostMidTransaction(self):
        """
        Losing the connection after the first statement is not replayed: the
        caller gets SQLUnavailable, and the next transaction reconnects.
        """
        import pymysql

        store = self.makeStore(minConnections=1, maxConnections=1)
        u = parseSQLURL(self.url)

        def txn(cursor):
            cid = cursor.execute("SELECT CONNECTION_ID()").fetchone()[0]
            admin = pymysql.connect(
                host=u.host, port=u.port, user=u.user, password=u.password or ""
            )
            try:
                with admin.cursor() as cur:
                    cur.execute(f"KILL {int(cid)}")
            finally:
                admin.close()
            cursor.execute("SELECT 1")

        with self.assertRaises(SQLUnavailable):
            await store.runInteraction(txn)
        self.assertEqual(await store.runQuery("SELECT 2"), [(2,)])

    async def test_deadlockRetried(self):
        """
        Two transactions locking two rows in opposite orders deadlock; the
        one InnoDB rolls back runs again, so both callers succeed and each
        change is applied exactly once.
        """
        import threading

        store = self.makeStore(minConnections=2, maxConnections=2)
        await store.runInteraction(lambda c: c.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL) ENGINE=InnoDB"))
        await store.runQuery("INSERT INTO t (id, n) VALUES (1, 0), (2, 0)")
        barrier = threading.Barrier(2, timeout=10)
        attempts = []

        def bump(cursor, first, second):
            attempts.append(first)
            cursor.execute("UPDATE t SET n = n + 1 WHERE id = ?", (first,))
            if attempts.count(first) == 1:
                # Both hold their first row before either asks for its second.
                barrier.wait()
            cursor.execute("UPDATE t SET n = n + 1 WHERE id = ?", (second,))

        await gatherResults([store.runInteraction(bump, 1, 2), store.runInteraction(bump, 2, 1)])
        self.assertEqual(await store.runQuery("SELECT id, n FROM t ORDER BY id"), [(1, 2), (2, 2)])
        self.assertEqual(len(attempts), 3, "one of the two ran again after the deadlock")

    async def test_otherErrorsNotRetried(self):
        """A failure that is not a lock conflict reaches the caller after one run."""
        store = self.makeStore()
        runs = []

        def broken(cursor):
            runs.append(1)
            cursor.execute("SELECT * FROM no_such_table")

        with self.assertRaises(Exception):
            await store.runInteraction(broken)
        self.assertEqual(len(runs), 1)

    async def test_strictMode(self):
        """MySQL runs in strict mode: an over-long string is an error, not cut."""
        await self.migrated()
        with self.assertRaises(Exception) as cm:
            await self.store.runInteraction(_txn_addAccount, "x" * 40)
        self.assertIn("too long", str(cm.exception))

    async def test_cliReportsUnknownDatabase(self):
        """
        C{mmoshard migrate --status} on a database that does not exist says so and who creates it,
        and creates nothing (C{mmoshard migrate} itself creates it: a private server's test in
        mmoshard/test/test_startup.py).
        """
        u = parseSQLURL(self.url)
        missing = u.database + "_missing"
        url = self.url.replace(u.database, missing)
        out, err, code = await self.runCLI("migrate", "--status", "--sql-url", url)
        self.assertEqual(code, 0, err)
        self.assertIn(f"no database {missing!r} yet", out)
        self.assertIn("mmoshard migrate creates it", out)
        rows = await self.store.runQuery(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (missing,))
        self.assertEqual(list(rows), [])


class UnavailableTests(TestCase):
    """A MySQL server that is not there: typed errors, quickly."""

    timeout = 20

    def setUp(self):
        self.url = f"mysql://root@127.0.0.1:{freePort()}/nowhere"

    async def test_closedPort(self):
        """
        Nothing listening: ping, interactions and migrate fail with SQLUnavailable within seconds.
        """
        store = SQLStore(reactor, self.url)
        store.open()
        self.addCleanup(store.close)
        started = time.monotonic()
        with self.assertRaises(SQLUnavailable) as cm:
            await store.ping()
        self.assertIn("2003", str(cm.exception))
        with self.assertRaises(SQLUnavailable):
            await store.runInteraction(lambda c: c.execute("SELECT 1"))
        with self.assertRaises(SQLUnavailable):
            await migrate(store)
        self.assertLess(time.monotonic() - started, 5)

    async def test_cliClosedPort(self):
        """C{mmoshard migrate} against nothing listening fails in one line within seconds."""
        started = time.monotonic()
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "mmoshard.cli", "migrate", "--sql-url", self.url],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            path=str(REPO),
        )
        err = err.decode()
        self.assertEqual(code, 1, err)
        self.assertIn("mmoshard migrate: SQL database unavailable:", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertLess(time.monotonic() - started, 10)

    async def test_cliBadURL(self):
        """C{mmoshard migrate} with an unsupported URL scheme fails saying so."""
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "mmoshard.cli", "migrate", "--sql-url", "oracle://x/y"],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            path=str(REPO),
        )
        self.assertEqual(code, 1)
        self.assertIn(b"bad SQL URL: unsupported SQL URL scheme 'oracle'", err)
