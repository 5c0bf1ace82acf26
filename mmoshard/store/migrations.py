"""Schema migrations: the numbered files under sql/, applied to and checked against a database."""

# Migration layout (also in sql/README.md):
#
#   sql/NNNN_name.sql           SQL shared by every dialect
#   sql/mysql/NNNN_name.sql     MySQL/MariaDB only; replaces sql/NNNN_name.sql
#   sql/sqlite/NNNN_name.sql    SQLite only; replaces sql/NNNN_name.sql
#
# For each dialect the migrations are the shared files plus that dialect's
# directory, a dialect file replacing the shared file with the same name.
# Versions must run 1, 2, 3, ... without gaps or duplicates.  A statement ends
# with ";" at the end of a line; lines starting with "--" are comments.
# Applied versions are recorded in the schema_version table.

import re
import sys
from pathlib import Path

import attrs
from twisted.logger import Logger

from mmoshard.store.errors import SchemaMismatch, SQLUnavailable, StoreError

__all__ = [
    "DEFAULT_MIGRATIONS_DIR",
    "DIALECTS",
    "Migration",
    "MigrationError",
    "aheadMessage",
    "checkSchema",
    "currentVersion",
    "ensureMySQLDatabase",
    "latestVersion",
    "migrate",
    "migrationsAvailable",
    "splitStatements",
]

_log = Logger()

def _defaultMigrationsDir():
    # A checkout (and an editable install) has sql/ beside the package; a
    # regular install gets it as data files under <prefix>/share/mmoshard.
    checkout = Path(__file__).resolve().parents[2] / "sql"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "mmoshard" / "sql"


DEFAULT_MIGRATIONS_DIR = _defaultMigrationsDir()
DIALECTS = ("mysql", "sqlite")


class MigrationError(StoreError):
    """A migration file is malformed or failed to apply."""


@attrs.frozen
class Migration:
    """One numbered migration file."""

    version: int
    name: str  # the file name without .sql, e.g. "0001_accounts_characters"
    path: Path

    def statements(self):
        """@return: the file's statements, split on C{;} at line ends."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise MigrationError(f"cannot read migration {self.path}: {e}") from e
        return splitStatements(text)


_MIGRATION_NAME = re.compile(r"(\d{4,})_([A-Za-z0-9_]+)\.sql")


def splitStatements(text):
    """
    Split SQL into statements: one ends where a line ends with C{;}.  Lines
    starting with C{--} are dropped, so a comment may end with C{;} safely.
    """
    statements, current = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or (not current and not stripped):
            continue
        current.append(line.rstrip())
        if stripped.endswith(";"):
            statement = "\n".join(current).strip()[:-1].strip()
            if statement:
                statements.append(statement)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements


def _scanMigrations(directory):
    found = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: migration files are named like 0001_what_it_does.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations with version {version} in {directory}: "
                f"{found[version].path.name} and {path.name}; renumber one"
            )
        found[version] = Migration(version, path.name[:-4], path)
    return found


def migrationsAvailable(dialect, directory=None):
    """
    The migrations this code has for C{dialect}, in version order.

    @param directory: the migrations root; default the repository's C{sql/}.
    @raise MigrationError: for a missing directory, a misnamed file, a
        duplicate or missing version.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    directory = Path(directory) if directory is not None else DEFAULT_MIGRATIONS_DIR
    if not directory.is_dir():
        raise MigrationError(f"no migrations directory at {directory}")
    found = _scanMigrations(directory)
    for version, migration in _scanMigrations(directory / dialect).items():
        shared = found.get(version)
        if shared is not None and shared.name != migration.name:
            raise MigrationError(
                f"{migration.path} has the version of {shared.path} but another "
                "name: a dialect file replaces the shared file of the same name"
            )
        found[version] = migration
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        missing = sorted(set(range(1, (versions or [0])[-1] + 1)) - set(versions))
        raise MigrationError(
            f"{dialect} migrations in {directory} skip version(s) "
            + ", ".join(map(str, missing))
        )
    return [found[v] for v in versions]


def latestVersion(dialect, directory=None):
    """The schema version this code needs for C{dialect}."""
    migrations = migrationsAvailable(dialect, directory)
    return migrations[-1].version if migrations else 0


def _txn_versionTableExists(cursor):
    if cursor.dialect == "sqlite":
        cursor.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            ("schema_version",),
        )
    else:
        cursor.execute(
            "SELECT 1 FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = ?",
            ("schema_version",),
        )
    return cursor.fetchone() is not None


def _txn_currentVersion(cursor):
    if not _txn_versionTableExists(cursor):
        return 0
    row = cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _txn_createVersionTable(cursor):
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if cursor.dialect == "mysql" else ""
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER NOT NULL PRIMARY KEY,"
        " name VARCHAR(255) NOT NULL,"
        " applied_at DOUBLE NOT NULL"
        ")" + suffix
    )


# Serialises concurrent `mmoshard migrate` runs on one MySQL database; DDL
# commits implicitly there, so a transaction cannot do it.  (SQLite's BEGIN
# IMMEDIATE already does.)
_MYSQL_LOCK = "LEFT(CONCAT('mmoshard-migrate:', DATABASE()), 64)"


def _txn_apply(cursor, migration, statements, now):
    mysql = cursor.dialect == "mysql"
    if mysql:
        got = cursor.execute(f"SELECT GET_LOCK({_MYSQL_LOCK}, 60)").fetchone()[0]
        if got != 1:
            raise MigrationError(
                "another mmoshard migrate holds the migration lock on this "
                "database; try again when it has finished"
            )
    try:
        current = _txn_currentVersion(cursor)
        if current >= migration.version:
            return False  # someone else applied it meanwhile
        if current != migration.version - 1:
            raise MigrationError(
                f"cannot apply {migration.name}: database is at version {current}"
            )
        for number, statement in enumerate(statements, 1):
            try:
                cursor.execute(statement)
            except SQLUnavailable:
                raise
            except Exception as e:
                note = (
                    "; MySQL commits DDL as it goes, so the statements before "
                    "it stay applied: repair them by hand before migrating again"
                    if mysql and number > 1
                    else ""
                )
                raise MigrationError(
                    f"migration {migration.name}: statement {number} failed: {e}{note}"
                ) from e
        cursor.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, now),
        )
        return True
    finally:
        if mysql:
            try:
                cursor.execute(f"DO RELEASE_LOCK({_MYSQL_LOCK})")
            except Exception:
                pass  # a dead connection has released it already


def ensureMySQLDatabase(url, create):
    """
    Blocking (run it in a thread): make sure a MySQL URL's database exists,
    connecting to the server without one.  C{mmoshard migrate} calls it, so
    a fresh server needs nothing done by hand; the node never creates a
    database (a typo in its URL must not make an empty one).

    @param url: a parsed C{mysql://} L{mmoshard.store.sqlurl.SQLURL}.
    @param create: create the database when missing (C{utf8mb4}).
    @return: C{"exists"}, C{"created"} or (C{create} false) C{"missing"}.
    @raise SQLUnavailable: the server cannot be reached or refuses, with
        the redacted URL in the message.
    """
    import pymysql

    from mmoshard.store.sql import translateError

    timeout = url.options.get("connect_timeout") or None
    try:
        conn = pymysql.connect(host=url.host, port=url.port, user=url.user or "",
                               password=url.password or "", connect_timeout=timeout,
                               charset="utf8mb4")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                            (url.database,))
                if cur.fetchone():
                    return "exists"
                if not create:
                    return "missing"
                quoted = url.database.replace("`", "``")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4")
                return "created"
        finally:
            conn.close()
    except pymysql.err.Error as e:
        mapped = translateError(e) or e
        raise SQLUnavailable(f"{url.redacted()}: {mapped}") from e


async def currentVersion(store):
    """@return: the database's schema version, 0 for an empty database."""
    return await store.runInteraction(_txn_currentVersion)


def aheadMessage(current, latest):
    """The message for a database whose schema is newer than this code's migrations."""
    return (
        f"database schema version {current} is newer than this code ({latest}): "
        "upgrade mmoshard"
    )


async def migrate(store, directory=None):
    """
    Apply the pending migrations in order, each in its own transaction (on
    MySQL, where DDL commits implicitly, its version is recorded right after
    its last statement).

    @return: the list of L{Migration}s applied (empty when up to date).
    @raise SchemaMismatch: when the database is newer than this code.
    @raise MigrationError: when a migration is malformed or fails.
    """
    directory = directory if directory is not None else store.migrationsDir
    migrations = migrationsAvailable(store.dialect, directory)
    latest = migrations[-1].version if migrations else 0
    # Read every file first: a broken file stops us before the database changes.
    statements = {m.version: m.statements() for m in migrations}
    await store.runInteraction(_txn_createVersionTable)
    current = await currentVersion(store)
    if current > latest:
        raise SchemaMismatch(aheadMessage(current, latest))
    applied = []
    for migration in migrations:
        if migration.version <= current:
            continue
        done = await store.runInteraction(
            _txn_apply, migration, statements[migration.version], store.reactor.seconds()
        )
        if done:
            _log.info(
                "applied SQL migration {name} to {url}",
                name=migration.name,
                url=store.url.redacted(),
            )
            applied.append(migration)
    return applied


async def checkSchema(store, directory=None, configPath=None):
    """
    Check the database schema is exactly the version this code needs.

    @param configPath: named in the "run mmoshard migrate" hint when given.
    @return: the schema version.
    @raise SchemaMismatch: when the database is behind or ahead.
    """
    directory = directory if directory is not None else store.migrationsDir
    latest = latestVersion(store.dialect, directory)
    current = await currentVersion(store)
    if current < latest:
        raise SchemaMismatch(
            f"database schema is at version {current}, this code needs {latest}: "
            f"run `mmoshard migrate --config {configPath or '...'}`"
        )
    if current > latest:
        raise SchemaMismatch(aheadMessage(current, latest))
    return current
