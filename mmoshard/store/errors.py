"""Typed errors raised by the SQL and volatile stores."""


class StoreError(Exception):
    """Base class of the stores' errors."""


class SQLUnavailable(StoreError):
    """The SQL database cannot be reached or stopped answering."""


class IntegrityError(StoreError):
    """A constraint (unique key, foreign key, ...) was violated."""


class SchemaMismatch(StoreError):
    """The database schema is behind or ahead of this code's migrations."""


class VolatileUnavailable(StoreError):
    """The volatile store (Redis) cannot be reached or timed out."""


class CommandError(StoreError):
    """
    The backend refused a command: an operation against a key holding the
    wrong kind of value, a value that is not an integer for C{incr}, or a
    script that failed.  The message is the backend's (e.g. C{WRONGTYPE ...}).
    """


class StoreNotOpen(RuntimeError):
    """
    A store was used before its C{open()}: a programming error, not an
    outage, so it is not a L{StoreError} that callers would handle as one.
    """
