"""The [auth] config table: password hashing, token lifetimes, abuse limits, characters."""

import attrs

from mmoshard.auth.gamedata import GameDataError, loadGameData
from mmoshard.config import Field, Problem, nonNegative, positive

AUTH_FIELDS = {
    "argon2_time_cost": Field("int", 2, positive, "argon2id iterations (OWASP: 2)"),
    "argon2_memory_kib": Field("int", 19456, positive, "argon2id memory in KiB (OWASP: 19 MiB)"),
    "argon2_parallelism": Field("int", 1, positive, "argon2id lanes (OWASP: 1)"),
    "hash_threads": Field("int", 0, nonNegative, "hashing threads; 0 = one per core"),
    "hash_nice": Field("int", 10, nonNegative,
                       "niceness added to hashing threads so the reactor comes first"),
    "access_ttl": Field("float", 900.0, positive, "access token lifetime, seconds"),
    "refresh_ttl": Field("float", 30 * 86400.0, positive, "login (refresh token) lifetime"),
    "username_min": Field("int", 3, positive),
    "username_max": Field("int", 20, positive),
    "password_min": Field("int", 10, positive),
    "password_max": Field("int", 256, positive),
    "lockout_threshold": Field("int", 5, positive, "failed logins before a lockout"),
    "lockout_base": Field("float", 30.0, positive, "first lockout, doubling each time"),
    "lockout_max": Field("float", 3600.0, positive, "longest lockout"),
    "failure_window": Field("float", 3600.0, positive, "failures are forgotten after this"),
    "login_rate": Field("int", 30, positive, "logins per IP per login_window"),
    "login_window": Field("float", 60.0, positive),
    "register_rate": Field("int", 10, positive, "registrations per IP per register_window"),
    "register_window": Field("float", 3600.0, positive),
    "trust_forwarded": Field("bool", False, help="take the client IP from X-Forwarded-For"),
    "max_body": Field("int", 16384, positive, "largest request body, bytes"),
    "max_characters": Field("int", 8, positive, "characters per account"),
    "character_name_min": Field("int", 3, positive),
    "character_name_max": Field("int", 16, positive),
    "name_release_after": Field("float", 7 * 86400.0, nonNegative,
                                "seconds before a deleted character's name is free"),
    "classes_file": Field("datapath", "etc/classes.toml", help="game data: classes, start zone"),
    "sessions_refresh": Field("float", 15.0, positive, "active-sessions gauge refresh"),
    "refresh_flush": Field("float", 5.0, positive,
                           "seconds between writes of refresh activity to SQL"),
    "refresh_retry_grace": Field("float", 10.0, nonNegative,
                                 "seconds a used-up refresh token may come back as a retry"),
}


@attrs.frozen
class AuthConfig:
    """The parsed [auth] table."""

    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    hash_threads: int
    hash_nice: int
    access_ttl: float
    refresh_ttl: float
    username_min: int
    username_max: int
    password_min: int
    password_max: int
    lockout_threshold: int
    lockout_base: float
    lockout_max: float
    failure_window: float
    login_rate: int
    login_window: float
    register_rate: int
    register_window: float
    trust_forwarded: bool
    max_body: int
    max_characters: int
    character_name_min: int
    character_name_max: int
    name_release_after: float
    classes_file: str
    sessions_refresh: float
    refresh_flush: float
    refresh_retry_grace: float


def validate(values, path, problems):
    """Cross-field checks of the [auth] table."""
    for low, high in (
        ("username_min", "username_max"),
        ("password_min", "password_max"),
        ("character_name_min", "character_name_max"),
        ("lockout_base", "lockout_max"),
    ):
        if values[low] > values[high]:
            problems.append(Problem(f"{path}.{low}", f"must not exceed {path}.{high}"))
    for name in ("username_max", "character_name_max"):
        if values[name] > 32:
            problems.append(Problem(f"{path}.{name}", "must be 32 or less (column width)"))
    if values["argon2_memory_kib"] < 8 * values["argon2_parallelism"]:
        problems.append(
            Problem(f"{path}.argon2_memory_kib", "must be at least 8 × argon2_parallelism")
        )
    try:
        loadGameData(values["classes_file"])
    except GameDataError as e:
        problems.append(Problem(f"{path}.classes_file", str(e)))
    if values["access_ttl"] > values["refresh_ttl"]:
        problems.append(Problem(f"{path}.access_ttl", f"must not exceed {path}.refresh_ttl"))


def makeConfig(**overrides):
    """@return: an L{AuthConfig} of the defaults with C{overrides} (tests, tools)."""
    values = {name: field.default for name, field in AUTH_FIELDS.items()}
    values.update(overrides)
    return AuthConfig(**values)
