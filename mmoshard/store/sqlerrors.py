"""SQL driver errors (pymysql, sqlite3, adbapi) as the store's typed errors."""

import sqlite3

from twisted.enterprise import adbapi

from mmoshard.store.errors import IntegrityError, SQLUnavailable, StoreError

__all__ = ["isConflict", "isDisconnect", "loadPymysql", "raiseTranslated", "translateError"]

# pymysql error numbers meaning the connection broke after it was made: the
# statement can be retried on a fresh connection if nothing ran before it.
_MYSQL_DISCONNECTED = frozenset(
    {
        1053,  # server shutdown in progress
        1927,  # connection killed (MariaDB)
        2006,  # server has gone away
        2013,  # lost connection during query
        2055,  # lost connection (extended)
        4031,  # disconnected by the server for inactivity (MySQL 8)
    }
)
# ... and those meaning the server cannot be reached or used at all.
_MYSQL_UNAVAILABLE = _MYSQL_DISCONNECTED | {
    1040,  # too many connections
    1044,  # access denied to the database
    1045,  # access denied for the user
    1049,  # unknown database
    1129,  # host blocked
    1130,  # host not allowed
    2002,  # can't connect (socket)
    2003,  # can't connect (TCP)
    2005,  # unknown host
    2012,  # handshake error
    2014,  # commands out of sync: the connection is unusable
}
_SQLITE_UNAVAILABLE = (
    "unable to open database file",
    "database is locked",
    "disk i/o error",
    "cannot operate on a closed database",
)


def loadPymysql():
    # Imported lazily so a SQLite-only install does not need pymysql.
    try:
        import pymysql
    except ImportError:
        return None
    return pymysql


def isDisconnect(exc):
    """
    True when C{exc} says a once-working MySQL connection broke, not that a
    read or write timed out: a hung server would hang the replay as well.
    """
    pymysql = loadPymysql()
    if pymysql is None or isinstance(exc.__context__, TimeoutError):
        return False
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return (
        isinstance(exc, pymysql.err.OperationalError)
        and bool(exc.args)
        and exc.args[0] in _MYSQL_DISCONNECTED
    )


# MySQL errors after which InnoDB rolled the transaction back (or the
# driver will): running the whole transaction again is the documented cure.
_MYSQL_CONFLICT = frozenset(
    {
        1205,  # lock wait timeout exceeded
        1213,  # deadlock found when trying to get lock
    }
)


def isConflict(exc):
    """True when C{exc} says a MySQL transaction lost a lock conflict (deadlock, lock wait timeout)."""
    pymysql = loadPymysql()
    return (
        pymysql is not None
        and isinstance(exc, pymysql.err.OperationalError)
        and bool(exc.args)
        and exc.args[0] in _MYSQL_CONFLICT
    )


def translateError(exc):
    """
    Map a driver exception to the store's typed errors.

    @return: an L{IntegrityError} or L{SQLUnavailable} carrying the driver's
        message, or None when C{exc} has no typed equivalent.
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, adbapi.ConnectionLost):
        return SQLUnavailable("lost the connection to the SQL database")
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.ProgrammingError)):
        text = str(exc)
        if text.lower().rstrip(".") in _SQLITE_UNAVAILABLE:
            return SQLUnavailable(f"SQLite: {text}")
        return None
    pymysql = loadPymysql()
    if pymysql is None or not isinstance(exc, pymysql.err.Error):
        return None
    if len(exc.args) >= 2:
        message = f"{exc.args[1]} (MySQL error {exc.args[0]})"
    else:
        message = str(exc) or type(exc).__name__
    if isinstance(exc, pymysql.err.IntegrityError):
        return IntegrityError(message)
    if isinstance(exc, pymysql.err.InterfaceError):
        return SQLUnavailable(f"MySQL connection is closed: {message}")
    if isinstance(exc, pymysql.err.OperationalError) and exc.args:
        if exc.args[0] in _MYSQL_UNAVAILABLE:
            return SQLUnavailable(message)
    return None


def raiseTranslated(exc):
    mapped = translateError(exc)
    if mapped is None or mapped is exc:
        raise exc
    raise mapped from exc
