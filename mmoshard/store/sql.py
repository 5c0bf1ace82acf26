"""The process's SQL pool: MySQL/MariaDB (pymysql) or SQLite over adbapi, with typed errors."""

import os
import random
import re
from functools import lru_cache
from pathlib import Path

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mmoshard.interfaces import ISQLStore
from mmoshard.store.errors import (  # noqa: F401 (callers find the errors here too)
    IntegrityError,
    SchemaMismatch,
    SQLUnavailable,
    StoreError,
    StoreNotOpen,
)

# The migration machinery (and the SchemaMismatch it raises) moved to
# migrations.py; its names stay importable from here, where callers and
# `mmoshard migrate` have always found them.
from mmoshard.store.migrations import (  # noqa: F401
    DEFAULT_MIGRATIONS_DIR,
    DIALECTS,
    Migration,
    MigrationError,
    aheadMessage,
    checkSchema,
    currentVersion,
    ensureMySQLDatabase,
    latestVersion,
    migrate,
    migrationsAvailable,
    splitStatements,
)
# Driver errors are translated in sqlerrors.py; translateError is found here too.
from mmoshard.store.sqlerrors import (  # noqa: F401
    isConflict,
    isDisconnect,
    loadPymysql,
    raiseTranslated,
    translateError,
)
# URL parsing lives in sqlurl.py; callers find it here, beside the store.
from mmoshard.store.sqlurl import SQLITE_BUSY_TIMEOUT, SQLURL, parseSQLURL  # noqa: F401

_log = Logger()

# --- Placeholders -------------------------------------------------------------

# Strings, quoted names and comments are copied as they are (except that "%"
# is doubled everywhere, as pymysql %-formats the whole statement); a bare "?"
# becomes "%s".  MySQL strings take backslash escapes.
_MYSQL_TOKEN = re.compile(
    r"""
      '(?:[^'\\]|\\.|'')*'
    | "(?:[^"\\]|\\.|"")*"
    | `(?:[^`]|``)*`
    | /\*.*?\*/
    | --(?=\s|$)[^\n]*
    | \#[^\n]*
    | \?
    | %
    """,
    re.VERBOSE | re.DOTALL,
)


def _mysqlToken(match):
    token = match.group(0)
    if token == "?":
        return "%s"
    return token.replace("%", "%%")


@lru_cache(maxsize=2048)
def toPyformat(sql):
    """Turn C{?} placeholders into pymysql's C{%s}, escaping literal C{%}."""
    return _MYSQL_TOKEN.sub(_mysqlToken, sql)


# --- Cursor -------------------------------------------------------------------


def _params(params):
    if params is None:
        return ()
    if isinstance(params, (str, bytes, dict)):
        # tuple() of these would silently bind characters or keys
        raise TypeError(f"SQL parameters must be a sequence of values, got {params!r}")
    return tuple(params)


class Cursor:
    """
    The cursor thread-side functions get: C{?} placeholders on both dialects
    and the store's typed errors.

    @ivar dialect: C{"mysql"} or C{"sqlite"}.
    """

    def __init__(self, cursor, dialect, reconnect=None, attempt=None):
        """
        @param cursor: a DB-API cursor (or an adbapi Transaction).
        @param reconnect: for MySQL, a callable returning a cursor on a fresh
            connection; used once, when the first statement finds the pooled
            connection dead (server restarted, idle timeout).
        @param attempt: the transaction's L{Attempt}: once it is past its
            deadline no statement runs any more.
        """
        self._cursor = cursor
        self.dialect = dialect
        self._reconnect = reconnect
        self._attempt = attempt
        self._fresh = True

    def _prepare(self, sql):
        if self.dialect == "mysql":
            return toPyformat(sql)
        return sql

    def _run(self, method, sql, params):
        if self._attempt is not None:
            self._attempt.check()
        try:
            getattr(self._cursor, method)(sql, params)
        except Exception as e:
            # Nothing ran on this connection yet, so nothing is lost by
            # replaying the statement on a new one.
            if self._fresh and self._reconnect is not None and isDisconnect(e):
                self._fresh = False
                _log.info("MySQL connection was dead ({error}); reconnecting", error=e)
                try:
                    self._cursor = self._reconnect()
                    getattr(self._cursor, method)(sql, params)
                except Exception as e2:
                    raiseTranslated(e2)
            else:
                raiseTranslated(e)
        self._fresh = False
        return self

    def execute(self, sql, params=()):
        """
        Run one statement with C{?} placeholders bound to C{params}.

        @return: this cursor, so C{cursor.execute(...).fetchall()} works.
        @raise IntegrityError: on a constraint violation.
        @raise SQLUnavailable: when the database cannot be reached.
        """
        return self._run("execute", self._prepare(sql), _params(params))

    def executemany(self, sql, seqOfParams):
        """Run one statement once per parameter tuple (batched on MySQL)."""
        rows = [_params(p) for p in seqOfParams]
        if not rows:
            return self
        return self._run("executemany", self._prepare(sql), rows)

    def fetchone(self):
        """@return: the next row (a tuple) or None."""
        return self._cursor.fetchone()

    def fetchall(self):
        """@return: a list of the remaining rows (tuples)."""
        return list(self._cursor.fetchall())

    def fetchmany(self, size):
        """@return: a list of up to C{size} rows."""
        return list(self._cursor.fetchmany(size))

    @property
    def lastrowid(self):
        """The auto-increment id of the last inserted row."""
        return self._cursor.lastrowid

    @property
    def rowcount(self):
        """Rows changed by the last statement (-1 when unknown)."""
        return self._cursor.rowcount

    @property
    def description(self):
        """The DB-API description of the last result's columns."""
        return self._cursor.description


# --- Pool ---------------------------------------------------------------------


class _Connection(adbapi.Connection):
    """adbapi's per-interaction connection wrapper, quiet about dead connections."""

    def commit(self):
        try:
            self._connection.commit()
        except Exception as e:
            mapped = translateError(e)
            if isinstance(mapped, SQLUnavailable):
                raise SQLUnavailable(
                    "lost the SQL connection while committing; the transaction "
                    f"may or may not have been applied: {mapped}"
                ) from e
            raise

    def rollback(self):
        try:
            self._connection.rollback()
        except Exception as e:
            # The connection is broken: drop it so this thread's next
            # transaction connects afresh.  The caller already gets the error
            # that made us roll back; raising would only make adbapi log a
            # second, unhandled-looking "Rollback failed".
            _log.info("dropping a broken SQL connection: {error}", error=e)
            pool = self._pool
            if pool.connections.get(pool.threadID()) is self._connection:
                pool.disconnect(self._connection)


class _Pool(adbapi.ConnectionPool):
    connectionFactory = _Connection


def _openMySQL(conn):
    """Per-connection settings, re-applied on every (re)connect."""
    with conn.cursor() as cur:
        # Strict mode so an over-long string is an error, not a silent cut;
        # UTC so NOW() and friends agree across hosts.
        cur.execute(
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''),"
            " 'STRICT_ALL_TABLES', 'NO_ENGINE_SUBSTITUTION'), time_zone = '+00:00'"
        )
    conn.commit()


def _openSQLite(conn):
    conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
    # WAL lets other processes (mmoshard migrate, operator tools) read while
    # the node writes; NORMAL sync is durable enough in WAL mode.
    conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


class Attempt:
    """
    One transaction's deadline, shared by the reactor, which marks it
    C{expired} when the caller was answered L{SQLUnavailable}, and the pool
    thread, which checks it before each statement and before the commit.
    """

    __slots__ = ("expired", "deadline")

    def __init__(self, deadline):
        self.expired = False
        self.deadline = deadline

    def check(self):
        """@raise SQLUnavailable: the caller has been answered; roll back."""
        if self.expired:
            raise SQLUnavailable(
                f"the transaction is past its {self.deadline}s deadline: not run or rolled back"
            )


def placeholders(count):
    """@return: C{count} parameter marks for an C{IN (...)} list: C{"?, ?, ?"}."""
    return ", ".join("?" * count)


def _txn_query(cursor, sql, params):
    return cursor.execute(sql, params).fetchall()


def _txn_ping(cursor):
    cursor.execute("SELECT 1").fetchone()


# How many times a transaction that lost a MySQL lock conflict runs again.
CONFLICT_RETRIES = 3


@implementer(ISQLStore)
class SQLStore:
    """
    The process's one SQL connection pool.  Constructing it checks the URL
    and touches nothing else: L{open} starts the pool, and every call
    before it fails with L{StoreNotOpen}.

    @ivar dialect: C{"mysql"} or C{"sqlite"}.
    @ivar url: the parsed L{SQLURL}.
    @ivar migrationsDir: where L{migrate} and L{checkSchema} find migrations.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        url,
        minConnections=1,
        maxConnections=10,
        migrationsDir=None,
        readTimeout=None,
        deadline=None,
    ):
        """
        @param url: C{mysql://...} or C{sqlite:///...} (see L{parseSQLURL}).
        @param readTimeout: seconds a MySQL statement may take before the
            connection is considered dead, overriding the URL's
            C{read_timeout}; 0 for no limit (long migrations).
        @param deadline: seconds a transaction may take, waiting for a
            connection included, before it fails with L{SQLUnavailable}
            (None: no deadline, for migrations and tools).  A transaction
            past it is not started or is rolled back at its next statement
            or commit; only one whose commit was already sent may still be
            applied.  MySQL connections read and write with this timeout
            too unless the URL says otherwise, so a pool thread stuck on a
            hung server comes back, and its connection is made again.
        @raise ValueError: for a bad URL.
        """
        self.reactor = reactor
        self.url = url if isinstance(url, SQLURL) else parseSQLURL(url)
        self.dialect = self.url.dialect
        self.migrationsDir = (
            Path(migrationsDir) if migrationsDir is not None else DEFAULT_MIGRATIONS_DIR
        )
        self._closed = False
        self._closing = None
        self._poolClosed = False
        self._closeWaiters = []
        self._inflight = 0
        self._idleWaiters = []
        self.minConnections = minConnections
        self.maxConnections = maxConnections
        self.readTimeout = readTimeout
        self.deadline = deadline or None
        self._unavailable = False
        if self.dialect == "mysql" and loadPymysql() is None:
            raise ValueError("a mysql:// SQL URL needs pymysql installed")
        # Made by open(); None before.
        self._pool = None

    def open(self):
        """
        Start the pool: its threads, and the connections adbapi makes in
        them; for SQLite, first the database file's directory.  A second
        call does nothing.

        @raise RuntimeError: when the store was already closed.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; make a new store")
        if self._pool is not None:
            return
        common = dict(
            cp_reactor=self.reactor, cp_reconnect=True, cp_name=f"sql-{self.dialect}"
        )
        if self.dialect == "sqlite":
            path = self.url.path
            if path != ":memory:":
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
            # SQLite serialises writers anyway, and ":memory:" is private to
            # one connection: exactly one connection, one thread.
            self._pool = _Pool(
                "sqlite3",
                database=path,
                timeout=SQLITE_BUSY_TIMEOUT,
                # Transactions are begun explicitly (BEGIN IMMEDIATE) so DDL
                # in migrations is transactional too.
                isolation_level=None,
                # adbapi closes connections from the reactor thread.
                check_same_thread=False,
                cp_min=1,
                cp_max=1,
                cp_openfun=_openSQLite,
                **common,
            )
        else:
            timeouts = self.driverOptions()
            self._pool = _Pool(
                "pymysql",
                host=self.url.host,
                port=self.url.port,
                user=self.url.user or "",
                password=self.url.password or "",
                database=self.url.database,
                charset="utf8mb4",
                autocommit=False,
                cp_min=max(1, min(self.minConnections, self.maxConnections)),
                cp_max=max(1, self.maxConnections),
                cp_openfun=_openMySQL,
                **timeouts,
                **common,
            )
        self.log.info("SQL store {url} opened", url=self.url.redacted())

    def driverOptions(self):
        """
        @return: pymysql's C{connect_timeout}, C{read_timeout} and
            C{write_timeout} (None: no limit): the URL's, else the deadline
            for reads and writes (60 s without one); C{readTimeout} last.
        """
        options = dict(self.url.options)
        for key in ("read_timeout", "write_timeout"):
            if options[key] is None:
                options[key] = self.deadline or 60.0
        if self.readTimeout is not None:
            options["read_timeout"] = self.readTimeout
        return {k: (v or None) for k, v in options.items()}

    @property
    def inflight(self):
        """Transactions whose pool thread is not done, answered or not."""
        return self._inflight

    def __repr__(self):
        return f"<SQLStore {self.url.redacted()}>"

    # The pool thread's side of runInteraction.
    def _txn_run(self, trans, func, args, kwargs, attempt=None):
        if attempt is not None:
            # Waited past its deadline for a thread: never started.
            attempt.check()
        if self.dialect == "sqlite":
            cursor = Cursor(trans, "sqlite", attempt=attempt)
            # IMMEDIATE takes the write lock up front: a deferred transaction
            # that reads then writes can fail at once with SQLITE_BUSY when
            # another process wrote in between, without waiting.
            cursor.execute("BEGIN IMMEDIATE")
        else:

            def reconnect():
                trans.reconnect()
                trans.reopen()
                return trans

            cursor = Cursor(trans, "mysql", reconnect, attempt)
        result = func(cursor, *args, **kwargs)
        if attempt is not None:
            # The caller was answered SQLUnavailable: roll back, not commit.
            attempt.check()
        return result

    def runInteraction(self, func, *args, **kwargs):
        if self._closed:
            return fail(SQLUnavailable(f"{self!r} is closed"))
        if self._pool is None:
            return fail(StoreNotOpen(f"{self!r}: call open() before running SQL"))
        self._inflight += 1
        deadline = self.deadline
        attempt = Attempt(deadline) if deadline else None
        d = self._runRetrying(func, args, kwargs, attempt, CONFLICT_RETRIES)
        d.addErrback(self._translateFailure)
        # Counted until the thread is done, past the deadline too: close()
        # must not join a thread still waiting on the database.
        d.addBoth(self._finished)
        if attempt is None:
            return d
        answer = Deferred(lambda _: self._abandon(timer, attempt))
        timer = self.reactor.callLater(deadline, self._expire, answer, attempt, func)
        d.addBoth(self._settle, answer, timer, func)
        return answer

    def _runRetrying(self, func, args, kwargs, attempt, retries):
        d = self._pool.runInteraction(self._txn_run, func, args, kwargs, attempt)
        if retries > 0:
            d.addErrback(self._conflicted, func, args, kwargs, attempt, retries)
        return d

    def _conflicted(self, failure, func, args, kwargs, attempt, retries):
        # A deadlock or lock wait timeout rolled the whole transaction back:
        # run it again after a short random pause, as MySQL's manual says to.
        if not isConflict(failure.value) or (attempt is not None and attempt.expired):
            return failure
        self.log.info("{txn} lost a lock conflict ({error}); retrying",
                      txn=func.__name__, error=failure.getErrorMessage())
        pause = random.uniform(0.005, 0.05) * (CONFLICT_RETRIES + 1 - retries)
        return deferLater(self.reactor, pause, self._runRetrying, func, args, kwargs, attempt,
                          retries - 1)

    def _abandon(self, timer, attempt):
        # The caller cancelled: the transaction rolls back if still running.
        attempt.expired = True
        if timer.active():
            timer.cancel()

    def _expire(self, answer, attempt, func):
        attempt.expired = True
        why = f"no answer from the SQL database within {attempt.deadline}s"
        if not self._unavailable:
            self._unavailable = True
            self.log.warn("SQL store {url} unavailable: {why} (in {txn})",
                          url=self.url.redacted(), why=why, txn=func.__name__)
        answer.errback(SQLUnavailable(
            f"{why}; the transaction is rolled back unless its commit was already sent"))

    def _settle(self, result, answer, timer, func):
        if timer.active():
            timer.cancel()
            if isinstance(result, Failure):
                answer.errback(result)
            else:
                if self._unavailable:
                    self._unavailable = False
                    self.log.info("SQL store {url} answering again", url=self.url.redacted())
                answer.callback(result)
        elif isinstance(result, Failure) and not result.check(SQLUnavailable):
            # The caller was answered already; a bug's traceback is still logged.
            self.log.failure("{txn} failed after its deadline", failure=result,
                             txn=func.__name__)
        return None

    def _translateFailure(self, failure):
        mapped = translateError(failure.value)
        if mapped is None or mapped is failure.value:
            return failure
        raise mapped from failure.value

    def _finished(self, result):
        self._inflight -= 1
        if not self._inflight:
            waiters, self._idleWaiters = self._idleWaiters, []
            for w in waiters:
                w.callback(None)
        return result

    def runQuery(self, sql, params=()):
        return self.runInteraction(_txn_query, sql, params)

    def ping(self):
        return self.runInteraction(_txn_ping)

    def close(self):
        if self._closing is None:
            self._closed = True
            self._closing = Deferred.fromCoroutine(self._close())
        if self._poolClosed:
            return succeed(None)
        d = Deferred()
        self._closeWaiters.append(d)
        return d

    async def _close(self):
        # Let running transactions finish so stopping the thread pool (which
        # joins its threads) does not block the reactor on a query.
        while self._inflight:
            waiter = Deferred()
            self._idleWaiters.append(waiter)
            await waiter
        if self._pool is not None:
            self._pool.close()
        # Set before firing: a waiter's callback may call close() again.
        self._poolClosed = True
        while self._closeWaiters:
            self._closeWaiters.pop(0).callback(None)
