"""The `mmoshard` operator command: subcommands such as `mmoshard migrate`."""

import argparse
import sys
import traceback

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.internet.task import react

from mmoshard.auth import cli as accountCLI
from mmoshard.command import CommandError
from mmoshard.store.errors import SQLUnavailable, StoreError
from mmoshard.store.migrations import ensureMySQLDatabase
from mmoshard.version import cli as releaseCLI


@attrs.frozen
class Command:
    """
    One subcommand: C{arguments(parser)} adds its options, C{run(reactor,
    args)} is a coroutine function printing what it does and returning the
    exit status (None for 0).
    """

    help: str
    arguments: object
    run: object


def addSQLOptions(parser):
    """The options every command that opens the SQL database shares."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="node config file (TOML); its [sql] url is used",
    )
    parser.add_argument(
        "--sql-url",
        metavar="URL",
        help="mysql://user:pass@host:port/db or sqlite:///path "
        "(overrides --config)",
    )


def sqlURL(args):
    """
    The SQL URL from C{--sql-url}, else from the config file (no file: the
    embedded default, as C{twistd mmoshard} would use).
    """
    if args.sql_url:
        return args.sql_url
    from mmoshard.config import ConfigError, loadConfig

    try:
        config = loadConfig(args.config)
    except ConfigError as e:
        raise CommandError(str(e)) from None
    return config.sql.url


def openStore(reactor, args, **kwargs):
    """An opened L{SQLStore} for C{args}' URL; raises L{CommandError} for a bad URL."""
    from mmoshard.store.sql import SQLStore

    url = sqlURL(args)
    try:
        store = SQLStore(reactor, url, **kwargs)
    except ValueError as e:
        raise CommandError(f"bad SQL URL: {e}") from None
    store.open()
    return store


# --- migrate ------------------------------------------------------------------


def _migrateArguments(parser):
    addSQLOptions(parser)
    parser.add_argument(
        "--status",
        action="store_true",
        help="only show the database's schema version against this code's",
    )


async def runMigrate(reactor, args, out=None):
    """Apply pending migrations, or with C{--status} report where we stand."""
    from mmoshard.store import sql

    out = out or sys.stdout
    # No read timeout: a big ALTER TABLE may take long, and giving up on it
    # client-side would leave it applied but unrecorded.
    store = openStore(reactor, args, minConnections=1, maxConnections=1, readTimeout=0)
    where = store.url.redacted()
    try:
        latest = sql.latestVersion(store.dialect, store.migrationsDir)
        if store.dialect == "mysql":
            # A fresh server has no database yet: migrate makes it (utf8mb4).
            state = await deferToThreadPool(
                reactor, reactor.getThreadPool(),
                ensureMySQLDatabase, store.url, not args.status)
            if state == "created":
                print(f"created database {store.url.database!r} on {where}", file=out)
            elif state == "missing":
                print(f"{where}: no database {store.url.database!r} yet, this code needs "
                      f"schema version {latest}; mmoshard migrate creates it", file=out)
                return 0
        if args.status:
            current = await sql.currentVersion(store)
            if current == latest:
                print(f"{where}: schema version {current}, up to date", file=out)
            elif current < latest:
                pending = [
                    m.name
                    for m in sql.migrationsAvailable(store.dialect, store.migrationsDir)
                    if m.version > current
                ]
                print(
                    f"{where}: schema version {current}, this code needs {latest}; "
                    f"pending: {', '.join(pending)}",
                    file=out,
                )
            else:
                raise CommandError(f"{where}: {sql.aheadMessage(current, latest)}")
            return 0
        applied = await sql.migrate(store)
        for m in applied:
            print(f"applied {m.name} (version {m.version})", file=out)
        if applied:
            print(f"{where}: schema version {latest}, up to date", file=out)
        else:
            print(f"{where}: schema version {latest}, up to date, nothing to apply", file=out)
        return 0
    finally:
        await store.close()


COMMANDS = {
    "migrate": Command(
        help="apply pending SQL schema migrations", arguments=_migrateArguments, run=runMigrate
    ),
    "release": Command(
        help="publish, roll back or show the version role's releases (docs/version.md)",
        arguments=releaseCLI.arguments,
        run=releaseCLI.run,
    ),
    "account": Command(
        help="ban, unban or show an account; restore a deleted character (docs/auth.md)",
        arguments=accountCLI.arguments,
        run=accountCLI.run,
    ),
}


def makeParser():
    parser = argparse.ArgumentParser(
        prog="mmoshard", description="mmoshard operator commands"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.arguments(p)
    return parser


async def _run(reactor, name, args):
    try:
        status = await COMMANDS[name].run(reactor, args)
    except SQLUnavailable as e:
        print(f"mmoshard {name}: SQL database unavailable: {e}", file=sys.stderr)
        raise SystemExit(1)
    except (CommandError, StoreError) as e:
        # StoreError also covers SchemaMismatch and MigrationError: expected
        # operator-facing failures, so no traceback.
        print(f"mmoshard {name}: {e}", file=sys.stderr)
        raise SystemExit(1)
    except Exception:
        traceback.print_exc()
        print(f"mmoshard {name}: unexpected error (a bug; traceback above)", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(status or 0)


def main(argv=None):
    """Entry point of the C{mmoshard} console script; exits the process."""
    args = makeParser().parse_args(argv)
    react(lambda reactor: Deferred.fromCoroutine(_run(reactor, args.command, args)))


if __name__ == "__main__":
    main()
