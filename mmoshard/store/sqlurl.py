"""SQL URLs: parseSQLURL turns a mysql:// or sqlite:/// URL into an SQLURL."""

from urllib.parse import parse_qsl, quote, unquote, urlsplit

import attrs

__all__ = ["SQLITE_BUSY_TIMEOUT", "SQLURL", "parseSQLURL"]

# Driver options accepted in a mysql:// URL's query string (seconds; 0 = none).
# None: not given, so the store's deadline (or 60 s without one) applies.
_MYSQL_OPTIONS = {
    "connect_timeout": 5.0,
    "read_timeout": None,
    "write_timeout": None,
}
SQLITE_BUSY_TIMEOUT = 5.0


@attrs.frozen
class SQLURL:
    """A parsed C{mysql://} or C{sqlite:///} URL."""

    dialect: str
    path: str | None = None  # sqlite: file path, or ":memory:"
    host: str | None = None
    port: int = 3306
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    database: str | None = None
    options: dict = attrs.field(factory=dict)

    def redacted(self):
        """The URL for messages and logs: the password never appears."""
        if self.dialect == "sqlite":
            return "sqlite:///" + self.path
        auth = quote(self.user or "", safe="") + (":***" if self.password else "")
        return f"mysql://{auth}{'@' if auth else ''}{self.host}:{self.port}/{self.database}"


def parseSQLURL(url):
    """
    Parse C{mysql://user:pass@host:port/database[?read_timeout=60]} or
    C{sqlite:///relative/path} / C{sqlite:////absolute/path}.

    @raise ValueError: saying what is wrong and what a good URL looks like.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"SQL URL must be a non-empty string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc:
            raise ValueError(
                f"sqlite URL {url!r} has a host part: use sqlite:///relative/path "
                "or sqlite:////absolute/path (three or four slashes)"
            )
        # sqlite:///a/b -> "a/b" (relative); sqlite:////a/b -> "/a/b".
        path = unquote(parts.path[1:])
        if not path:
            raise ValueError(
                f"sqlite URL {url!r} needs a path: sqlite:///var/mmoshard.sqlite3"
            )
        if parts.query:
            raise ValueError(f"sqlite URL {url!r} takes no ?options")
        return SQLURL(dialect="sqlite", path=path)
    if parts.scheme == "mysql":
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database or "/" in database:
            raise ValueError(
                f"bad mysql URL {SQLURL('mysql', host=parts.hostname, database=database).redacted()!r}:"
                " use mysql://user:password@host:port/database"
            )
        try:
            port = parts.port or 3306
        except ValueError as e:
            raise ValueError(f"bad port in mysql URL: {e}") from None
        options = dict(_MYSQL_OPTIONS)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _MYSQL_OPTIONS:
                raise ValueError(
                    f"unknown mysql URL option {key!r} (known: "
                    + ", ".join(sorted(_MYSQL_OPTIONS))
                    + ")"
                )
            try:
                seconds = float(value)
                if seconds < 0:
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"mysql URL option {key}={value!r} must be a number of seconds "
                    "(0 for no limit)"
                ) from None
            options[key] = seconds
        return SQLURL(
            dialect="mysql",
            host=parts.hostname,
            port=port,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            database=database,
            options=options,
        )
    raise ValueError(
        f"unsupported SQL URL scheme {parts.scheme!r}: use "
        "mysql://user:password@host:port/database or sqlite:///path"
    )
