"""TOML configuration into frozen attrs objects, with every error reported at once."""

import os
import tomllib
from urllib.parse import quote, urlsplit

import attrs
from twisted.internet.endpoints import serverFromString

from mmoshard.paths import dataPath


@attrs.frozen
class Problem:
    """One thing wrong with the configuration, at a key path."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; C{problems} lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self):
        return "invalid configuration:\n" + "\n".join(
            f"  - {p}" for p in self.problems
        )


@attrs.frozen
class Field:
    """The schema of one config key: its type, default and optional check."""

    kind: str  # str, int, float, bool, strlist, intlist, endpoint, optendpoint, datapath
    default: object = None
    check: object = None  # callable(value) -> error message or None
    help: str = ""


_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "strlist": "a list of strings",
    "intlist": "a list of integers",
    "endpoint": "a Twisted endpoint string",
    "optendpoint": "a Twisted endpoint string or \"\" (off)",
    "datapath": "a file or directory path",
}


def _typeName(value):
    return {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)


def checkEndpoint(value):
    """@return: an error message when C{value} is not a server endpoint."""
    try:
        serverFromString(None, value)
    except Exception as e:
        return f"bad endpoint string {value!r}: {e}"
    return None


def endpointPort(endpoint):
    """
    @return: the port number of a C{tcp:}/C{tcp6:} server endpoint string
        (C{"tcp:9100:interface=127.0.0.1"}, C{"tcp:port=9100"}), or None for
        any other kind, read from the string itself (no socket is made).
    """
    parts = endpoint.split(":")
    if parts[0] not in ("tcp", "tcp6"):
        return None
    for part in parts[1:]:
        if part.startswith("port="):
            part = part[len("port="):]
        elif "=" in part:
            continue
        return int(part) if part.isdigit() else None
    return None


def _coerce(field, value):
    """@return: (value, error) for one raw TOML value."""
    kind = field.kind
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "strlist": lambda v: isinstance(v, list)
        and all(isinstance(x, str) for x in v),
        "intlist": lambda v: isinstance(v, list)
        and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
        "endpoint": lambda v: isinstance(v, str),
        "optendpoint": lambda v: isinstance(v, str),
        "datapath": lambda v: isinstance(v, str),
    }[kind](value)
    if not ok:
        return None, f"expected {_KIND_NAMES[kind]}, got {_typeName(value)} {value!r}"
    if kind == "float":
        value = float(value)
    elif kind == "datapath":
        value = dataPath(value)
    elif kind in ("strlist", "intlist"):
        value = tuple(value)
    elif kind == "endpoint" or (kind == "optendpoint" and value):
        error = checkEndpoint(value)
        if error:
            return None, error
    if field.check is not None:
        error = field.check(value)
        if error:
            return None, error
    return value, None


def readTable(raw, path, fields, problems):
    """
    Check the raw TOML table C{raw} against C{fields} (name -> L{Field}).

    Unknown keys and bad values are appended to C{problems}; the result maps
    every field name to its value, the default standing in for a bad one.
    """
    values = {}
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a table, got {_typeName(raw)}"))
        raw = {}
    for key in raw:
        if key not in fields:
            problems.append(
                Problem(
                    f"{path}.{key}",
                    "unknown key (known: " + ", ".join(sorted(fields)) + ")",
                )
            )
    for name, field in fields.items():
        if name in raw:
            value, error = _coerce(field, raw[name])
            if error:
                problems.append(Problem(f"{path}.{name}", error))
                value = field.default
        else:
            value = field.default
            if field.kind == "datapath" and value is not None:
                value = dataPath(value)
        values[name] = value
    return values


def positive(v):
    return None if v > 0 else "must be greater than 0"


def nonNegative(v):
    return None if v >= 0 else "must be 0 or more"


def _checkSQLURL(url):
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if not parts.path or parts.path == "/":
            return "sqlite URL needs a path: sqlite:///var/mmoshard.sqlite3"
        return None
    if parts.scheme == "mysql":
        if not parts.hostname or not parts.path.strip("/"):
            return "mysql URL must be mysql://user:pass@host:port/database"
        try:
            parts.port
        except ValueError as e:
            return f"bad port: {e}"
        return None
    return f"unsupported SQL URL {url!r}: use mysql://... or sqlite:///path"


def _checkVolatileURL(url):
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return None
    if parts.scheme == "redis":
        if not parts.hostname:
            return "redis URL must be redis://[:password@]host:port/db"
        try:
            parts.port
            int(parts.path.strip("/") or 0)
        except ValueError as e:
            return f"bad redis URL: {e}"
        return None
    if parts.scheme == "redis-cluster":
        from mmoshard.store.volatile import parseClusterURL

        try:
            parseClusterURL(url)
        except ValueError as e:
            return str(e)
        return None
    return (f"unsupported volatile store URL {url!r}: use memory://, redis://host:port/db "
            f"or redis-cluster://host:port[,host:port...]")


def _checkCORSOrigins(origins):
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if (parts.scheme not in ("http", "https") or not parts.hostname
                or parts.path or parts.query or parts.fragment or origin.endswith("/")):
            return (f"{origin!r} is not an origin: write scheme://host[:port] "
                    "(no path, no trailing slash), or \"*\" for any")
    return None


NODE_FIELDS = {
    "id": Field("str", None, help="this process's node id (default: hostname-pid)"),
    "roles": Field("strlist", None, help="roles to host (default: every installed)"),
    "var_dir": Field("str", "var", help="directory for the SQLite file and state"),
    "gc_threshold": Field(
        "intlist",
        (50000, 20, 20),
        lambda v: None if len(v) == 3 and all(x >= 0 for x in v) else "must be three integers >= 0",
        "gc.set_threshold for the twistd process",
    ),
}
SQL_FIELDS = {
    "url": Field("str", None, _checkSQLURL, "mysql://... or sqlite:///path"),
    "pool_min": Field("int", 3, positive),
    "pool_max": Field("int", 10, positive),
    "deadline": Field("float", 5.0, positive,
                      "seconds a client's transaction may take before server.unavailable / 503"),
}
VOLATILE_FIELDS = {
    "url": Field("str", "memory://", _checkVolatileURL),
    "prefix": Field("str", "mmo:"),
    "timeout": Field("float", 2.0, positive, "reply timeout in seconds"),
}
LISTEN_FIELDS = {
    "http": Field("optendpoint", "tcp:8080"),
    "tcp": Field("optendpoint", "tcp:7000"),
    "websocket": Field("optendpoint", "tcp:7001"),
    "admin": Field("optendpoint", "tcp:9100:interface=127.0.0.1",
                   help="loopback: no login; anywhere else: operator login"),
}
WEB_FIELDS = {
    "cors_origins": Field("strlist", (), _checkCORSOrigins,
                          "origins whose pages may call the public REST API (CORS)"),
    "cors_max_age": Field("int", 600, nonNegative, "seconds a browser may cache a preflight"),
}
PUBLIC_FIELDS = {
    "host": Field("str", "127.0.0.1", help="host name clients use to reach us"),
    "http": Field("str", None, help="public base URL of the HTTP site"),
    "tcp": Field("str", None, help="host:port of the TCP session listener"),
    "websocket": Field("str", None, help="ws:// URL of the WebSocket listener"),
}
DIRECTORY_FIELDS = {
    "heartbeat": Field("float", 5.0, positive),
    "ttl": Field("float", 15.0, positive),
}
SECRETS_FIELDS = {
    "token_key": Field("str", None, help="HMAC key for access tokens"),
}
SHUTDOWN_FIELDS = {
    "drain_timeout": Field("float", 10.0, nonNegative),
}
SESSION_FIELDS = {
    "max_frame": Field("int", 65536, positive, "largest message in bytes"),
    "hello_timeout": Field("float", 5.0, positive),
    "heartbeat": Field("float", 10.0, positive, "seconds between pings"),
    "heartbeat_timeout": Field("float", 30.0, positive),
    "rate": Field("float", 30.0, positive, "messages per second per connection"),
    "burst": Field("int", 60, positive),
    "abuse_limit": Field("int", 20, positive, "rate-limited messages before close"),
    "max_output": Field("int", 1048576, positive, "unsent bytes before shedding"),
    "max_connections": Field("int", 20000, positive),
    "max_per_ip": Field("int", 200, positive),
    "max_pending": Field("int", 1000, positive,
                         "role requests in flight in this process before more are "
                         "answered server.busy"),
    "resume_grace": Field("float", 30.0, nonNegative),
    "replay_buffer": Field("int", 512, positive, "messages kept for resume"),
    "one_session_per_account": Field("bool", True),
    "resume_anywhere": Field("bool", True),
    "direct_write": Field("bool", True, help="TCP: send at once while nothing is queued"),
}


@attrs.frozen
class NodeSection:
    id: str
    roles: tuple | None
    var_dir: str
    gc_threshold: tuple


@attrs.frozen
class SQLSection:
    url: str
    pool_min: int
    pool_max: int
    deadline: float


@attrs.frozen
class VolatileSection:
    url: str
    prefix: str
    timeout: float

    @property
    def shared(self):
        """True when other processes can see this store (Redis)."""
        return not self.url.startswith("memory:")


@attrs.frozen
class ListenSection:
    http: str
    tcp: str
    websocket: str
    admin: str


@attrs.frozen
class WebSection:
    cors_origins: tuple
    cors_max_age: int


@attrs.frozen
class PublicSection:
    host: str
    http: str | None
    tcp: str | None
    websocket: str | None


@attrs.frozen
class DirectorySection:
    heartbeat: float
    ttl: float


@attrs.frozen(repr=False)
class SecretsSection:
    token_key: str | None

    def __repr__(self):
        # Secrets never reach a log line through a repr.
        return "SecretsSection(token_key=<hidden>)"


@attrs.frozen
class ShutdownSection:
    drain_timeout: float


@attrs.frozen
class SessionSection:
    max_frame: int
    hello_timeout: float
    heartbeat: float
    heartbeat_timeout: float
    rate: float
    burst: int
    abuse_limit: int
    max_output: int
    max_connections: int
    max_pending: int
    max_per_ip: int
    resume_grace: float
    replay_buffer: int
    one_session_per_account: bool
    resume_anywhere: bool
    direct_write: bool


@attrs.frozen
class Config:
    """The whole configuration of one process."""

    node: NodeSection
    sql: SQLSection
    volatile: VolatileSection
    listen: ListenSection
    public: PublicSection
    directory: DirectorySection
    secrets: SecretsSection
    shutdown: ShutdownSection
    session: SessionSection
    web: WebSection
    roles: dict = attrs.field(factory=dict)  # role name -> its config object
    path: str | None = None

    def roleConfig(self, name):
        """@return: the parsed config object of role C{name}."""
        return self.roles[name]


CORE_SECTIONS = {
    "node": (NODE_FIELDS, NodeSection),
    "sql": (SQL_FIELDS, SQLSection),
    "volatile": (VOLATILE_FIELDS, VolatileSection),
    "listen": (LISTEN_FIELDS, ListenSection),
    "public": (PUBLIC_FIELDS, PublicSection),
    "directory": (DIRECTORY_FIELDS, DirectorySection),
    "secrets": (SECRETS_FIELDS, SecretsSection),
    "shutdown": (SHUTDOWN_FIELDS, ShutdownSection),
    "session": (SESSION_FIELDS, SessionSection),
    "web": (WEB_FIELDS, WebSection),
}


def _withPassword(url, password):
    """Put C{password} (from the environment) into a mysql/redis URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    user = parts.username or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _defaultNodeId():
    return f"{os.uname().nodename}-{os.getpid()}"


def parseConfig(raw, plugins, roles=None, nodeId=None, env=None, path=None):
    """
    Build a L{Config} from a parsed TOML document.

    @param raw: the TOML document as a dict.
    @param plugins: the installed L{mmoshard.interfaces.IRole} plugins.
    @param roles: role names overriding C{node.roles} (the --roles flag).
    @param nodeId: overrides C{node.id} (the --node-id flag).
    @param env: the environment to read secrets from (default os.environ).
    @raise ConfigError: listing every problem found.
    """
    env = os.environ if env is None else env
    problems = []
    byName = {p.name: p for p in plugins}
    sectionOwners = {p.configSection: p for p in plugins}

    for key, value in raw.items():
        if key not in CORE_SECTIONS and key not in sectionOwners:
            problems.append(
                Problem(
                    key,
                    "unknown section (known: "
                    + ", ".join(sorted(set(CORE_SECTIONS) | set(sectionOwners)))
                    + ")",
                )
            )

    sections = {}
    for name, (fields, cls) in CORE_SECTIONS.items():
        sections[name] = readTable(raw.get(name, {}), name, fields, problems)

    node = sections["node"]
    if nodeId is not None:
        node["id"] = nodeId
    if not node["id"]:
        node["id"] = _defaultNodeId()
    if roles is not None:
        node["roles"] = tuple(roles)
    if node["roles"] is None:
        node["roles"] = tuple(sorted(byName))
    unknown = [r for r in node["roles"] if r not in byName]
    if unknown:
        problems.append(
            Problem(
                "node.roles",
                f"unknown role(s) {', '.join(unknown)} "
                f"(available: {', '.join(sorted(byName)) or 'none installed'})",
            )
        )
    if len(set(node["roles"])) != len(node["roles"]):
        problems.append(Problem("node.roles", "a role is listed twice"))

    sql = sections["sql"]
    if sql["url"] is None:
        sql["url"] = "sqlite:///" + os.path.join(node["var_dir"], "mmoshard.sqlite3")
    if env.get("MMOSHARD_SQL_URL"):
        sql["url"] = env["MMOSHARD_SQL_URL"]
        error = _checkSQLURL(sql["url"])
        if error:
            problems.append(Problem("MMOSHARD_SQL_URL", error))
    if env.get("MMOSHARD_SQL_PASSWORD") and sql["url"].startswith("mysql:"):
        sql["url"] = _withPassword(sql["url"], env["MMOSHARD_SQL_PASSWORD"])
    if sql["pool_min"] > sql["pool_max"]:
        problems.append(Problem("sql.pool_min", "must not exceed sql.pool_max"))

    volatile = sections["volatile"]
    if env.get("MMOSHARD_REDIS_PASSWORD") and volatile["url"].startswith("redis:"):
        volatile["url"] = _withPassword(volatile["url"], env["MMOSHARD_REDIS_PASSWORD"])

    secrets = sections["secrets"]
    if env.get("MMOSHARD_TOKEN_KEY"):
        secrets["token_key"] = env["MMOSHARD_TOKEN_KEY"]
    shared = not volatile["url"].startswith("memory:")
    if shared and not secrets["token_key"]:
        problems.append(
            Problem(
                "secrets.token_key",
                "required when the volatile store is shared (redis), so every "
                "process verifies the same tokens; set it or MMOSHARD_TOKEN_KEY",
            )
        )
    if secrets["token_key"] is not None and len(secrets["token_key"]) < 16:
        problems.append(Problem("secrets.token_key", "must be at least 16 characters"))

    directory = sections["directory"]
    if directory["ttl"] <= directory["heartbeat"]:
        problems.append(
            Problem("directory.ttl", "must be longer than directory.heartbeat")
        )
    session = sections["session"]
    if session["heartbeat_timeout"] <= session["heartbeat"]:
        problems.append(
            Problem("session.heartbeat_timeout", "must be longer than session.heartbeat")
        )

    roleConfigs = {}
    for name in node["roles"]:
        plugin = byName.get(name)
        if plugin is None:
            continue
        section = plugin.configSection
        try:
            roleConfigs[name] = plugin.parseConfig(raw.get(section, {}), section)
        except ConfigError as e:
            problems.extend(e.problems)

    if problems:
        raise ConfigError(problems)
    built = {
        name: cls(**sections[name]) for name, (fields, cls) in CORE_SECTIONS.items()
    }
    return Config(roles=roleConfigs, path=path, **built)


def loadConfig(path=None, plugins=None, roles=None, nodeId=None, env=None):
    """
    Read the TOML file at C{path} (no file: every default) into a L{Config}.

    @param plugins: the role plugins; discovered with getPlugins when None.
    @raise ConfigError: listing every problem found, including a missing or
        unparsable file.
    """
    if plugins is None:
        from mmoshard.plugins import discoverRoles

        plugins = discoverRoles()
    raw = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as e:
            raise ConfigError([Problem(path, f"cannot read: {e.strerror}")])
        except tomllib.TOMLDecodeError as e:
            raise ConfigError([Problem(path, f"not valid TOML: {e}")])
    return parseConfig(raw, plugins, roles=roles, nodeId=nodeId, env=env, path=path)
