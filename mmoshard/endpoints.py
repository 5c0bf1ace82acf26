"""Twisted server endpoint strings read as text: their fields, and whether one listens on loopback only."""


def _fields(endpoint):
    """@return: the fields of a Twisted endpoint string, split at unescaped colons and unescaped."""
    parts, current, chars = [], [], iter(endpoint)
    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


LOOPBACK_INTERFACES = frozenset({"127.0.0.1", "::1", "localhost"})


def isLoopbackEndpoint(endpoint):
    """
    @return: whether the server endpoint string C{endpoint} listens on
        loopback only: a C{unix:} socket, or C{tcp}/C{tcp6}/C{ssl} with an
        C{interface} of 127.0.0.1, ::1 or localhost (the admin site then
        needs no login: docs/operations.md, "Admin site").  Read from the
        string itself; an unparsable one is not loopback.
    """
    parts = _fields(endpoint)
    if parts[0] == "unix":
        return True
    if parts[0] not in ("tcp", "tcp6", "ssl"):
        return False
    interface = None
    for part in parts[1:]:
        if part.startswith("interface="):
            interface = part[len("interface="):]
    return interface in LOOPBACK_INTERFACES


__all__ = ["isLoopbackEndpoint", "LOOPBACK_INTERFACES"]
