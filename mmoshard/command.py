"""CommandError: what an operator command raises to report one line on stderr and exit 1."""


class CommandError(Exception):
    """A failure to report as one line on stderr, exiting with status 1."""


__all__ = ["CommandError"]
