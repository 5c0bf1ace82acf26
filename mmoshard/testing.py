"""Shared test helpers: real MariaDB/Redis fixtures, free ports, twistd runners."""

import os
import socket
import uuid

from twisted.trial.unittest import SkipTest


def underCI():
    """True when running in CI, where integration tests must fail, not skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what, why):
    """
    Give up on an integration test whose server is absent: skip with a loud
    reason on a developer machine, fail under C{CI=true}.
    """
    reason = f"{what} is not reachable ({why}); integration test cannot run"
    if underCI():
        raise AssertionError(reason + " and CI=true forbids skipping")
    raise SkipTest(reason)


def mysqlAddress():
    """
    (host, port, user, password) of the test MariaDB/MySQL server, from
    C{MMOSHARD_TEST_MYSQL} (C{user[:password]@host:port}), default
    C{root@127.0.0.1:3306}.
    """
    spec = os.environ.get("MMOSHARD_TEST_MYSQL", "root@127.0.0.1:3306")
    creds, _, hostport = spec.rpartition("@")
    user, _, password = (creds or "root").partition(":")
    host, _, port = hostport.partition(":")
    return host or "127.0.0.1", int(port or 3306), user, password


def redisAddress():
    """(host, port) of the test Redis, from C{MMOSHARD_TEST_REDIS}."""
    spec = os.environ.get("MMOSHARD_TEST_REDIS", "127.0.0.1:6379")
    host, _, port = spec.partition(":")
    return host or "127.0.0.1", int(port or 6379)


def requireMySQL():
    """
    Make a fresh, uniquely named database on the test server.

    @return: (url, dropper) where C{url} is a C{mysql://} URL for the new
        database and C{dropper()} removes it (synchronously; use it with
        C{addCleanup}).
    """
    import pymysql

    host, port, user, password = mysqlAddress()
    try:
        conn = pymysql.connect(
            host=host, port=port, user=user, password=password, connect_timeout=3
        )
    except Exception as e:
        unavailable(f"MySQL at {host}:{port}", e)
    name = "mmoshard_test_" + uuid.uuid4().hex[:12]
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()

    def dropper():
        c = pymysql.connect(host=host, port=port, user=user, password=password)
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        c.close()

    auth = user + (":" + password if password else "")
    return f"mysql://{auth}@{host}:{port}/{name}", dropper


def requireRedis():
    """
    Check the test Redis answers and pick a fresh key prefix.

    @return: (url, prefix, cleaner) where C{cleaner()} deletes every key under
        C{prefix} (synchronously, for C{addCleanup}).
    """
    host, port = redisAddress()
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"PING\r\n")
        if not s.recv(64).startswith(b"+PONG"):
            raise OSError("no PONG")
        s.close()
    except OSError as e:
        unavailable(f"Redis at {host}:{port}", e)
    prefix = "mmotest:" + uuid.uuid4().hex[:12] + ":"

    def cleaner():
        s = socket.create_connection((host, port), timeout=2)
        f = s.makefile("rwb")
        # Lua keeps it to one round trip and needs no client library.
        script = (
            "local n=0 for _,k in ipairs(redis.call('KEYS', ARGV[1])) do "
            "redis.call('DEL', k) n=n+1 end return n"
        )
        parts = [b"EVAL", script.encode(), b"0", (prefix + "*").encode()]
        f.write(b"*%d\r\n" % len(parts))
        for p in parts:
            f.write(b"$%d\r\n%s\r\n" % (len(p), p))
        f.flush()
        f.readline()
        s.close()

    return f"redis://{host}:{port}/0", prefix, cleaner


def freePort():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
