"""Storage: the SQL pool, the volatile store and their typed errors."""
