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
