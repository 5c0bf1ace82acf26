"""argon2id password hashing in a dedicated thread pool, never on the reactor thread."""

import os
import secrets
import threading
import time

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool


class HasherBusy(Exception):
    """More hashes are queued than the pool should hold; the caller sheds load."""


def poolSize(configured):
    """@return: the hashing thread count: C{configured}, or one per core when 0."""
    if configured:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def makeArgon2(config):
    """@return: an C{argon2.PasswordHasher} (argon2id) with C{config}'s parameters."""
    return argon2.PasswordHasher(
        time_cost=config.argon2_time_cost,
        memory_cost=config.argon2_memory_kib,
        parallelism=config.argon2_parallelism,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


class PasswordHasher:
    """
    Hashes and verifies passwords with argon2id in its own thread pool.

    C{dummyHash} is a hash of a random password made once at start, verified
    against for unknown usernames so they cost one verification like known
    ones.  C{observe(op, seconds)} receives every hash time (a histogram).
    """

    def __init__(self, reactor, config, observe=None, queueFactor=64):
        self.reactor = reactor
        self.argon2 = makeArgon2(config)
        self.threads = poolSize(config.hash_threads)
        self.pool = ThreadPool(self.threads, self.threads, name="auth-argon2")
        self.observe = observe or (lambda op, seconds: None)
        self.maxPending = self.threads * queueFactor
        self.pending = 0
        self.dummyHash = None
        self.nice = config.hash_nice
        self._local = threading.local()

    async def start(self):
        if self.pool.joined:
            # A stopped ThreadPool cannot start again: a service stopped and
            # started in one process gets a fresh one.
            self.pool = ThreadPool(self.threads, self.threads, name="auth-argon2")
        self.pool.start()
        self.dummyHash = await self.hash(secrets.token_urlsafe(24))

    def stop(self):
        if self.pool.started:
            self.pool.stop()

    async def _run(self, func, *args):
        if self.pending >= self.maxPending:
            raise HasherBusy(f"{self.pending} password hashes queued")
        self.pending += 1
        try:
            return await deferToThreadPool(self.reactor, self.pool, func, *args)
        finally:
            self.pending -= 1

    def _lowerPriority(self):
        """
        Once per pool thread: raise its niceness, so on a busy core the
        reactor and SQL threads run before another hash (Linux: per thread).
        """
        if getattr(self._local, "niced", False):
            return
        self._local.niced = True
        if self.nice and hasattr(os, "setpriority"):
            tid = threading.get_native_id()
            try:
                os.setpriority(os.PRIO_PROCESS, tid,
                               os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
            except OSError:
                pass

    def _thread_hash(self, password):
        self._lowerPriority()
        t0 = time.perf_counter()
        try:
            return self.argon2.hash(password)
        finally:
            self.observe("hash", time.perf_counter() - t0)

    def _thread_verify(self, encoded, password):
        self._lowerPriority()
        t0 = time.perf_counter()
        try:
            self.argon2.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, False
        finally:
            self.observe("verify", time.perf_counter() - t0)
        return True, self.argon2.check_needs_rehash(encoded)

    async def hash(self, password):
        """@return: the argon2id encoded hash (str) of C{password}."""
        return await self._run(self._thread_hash, password)

    async def verify(self, encoded, password):
        """
        @return: C{(matches, needsRehash)}; C{needsRehash} is True when
            C{encoded} was made with other parameters than the current ones.
        """
        return await self._run(self._thread_verify, encoded, password)
