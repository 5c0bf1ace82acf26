"""The auth role's service: wires stores, hasher, limits, metrics and mounts the REST resources."""

from prometheus_client import Counter, Gauge, Histogram
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from mmoshard.auth.admin import AdminAPI, OperatorLogins
from mmoshard.auth.api import DIRECTORY_ROLES, AuthAPI
from mmoshard.auth.characters import CharacterStore
from mmoshard.auth.errors import AUTH_ERRORS
from mmoshard.auth.limits import Limits
from mmoshard.auth.logins import LoginRecords
from mmoshard.auth.passwords import PasswordHasher
from mmoshard.auth.store import AccountStore, LoginStore
from mmoshard.tokens import AccessTokens, RefreshTokens
from mmoshard.web.routes import Router, mountRouter

LOGIN_OUTCOMES = ("ok", "failed", "locked", "banned", "rate_limited", "maintenance")
REFRESH_OUTCOMES = ("ok", "invalid", "reused", "banned")
HASH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PURGE_EVERY = 3600.0
PURGE_AFTER = 86400.0


class _RefreshCounter:
    """
    The Counter C{mmoshard_auth_refreshes} (by C{outcome}), with refreshes
    counted in plain ints and added to it when the registry collects: a
    refresh is cheap enough that Counter.inc's lock and checks showed
    (measured: 5k instructions of some 450k).  Counts and collection are
    on the reactor thread.
    """

    def __init__(self):
        self.counter = Counter("mmoshard_auth_refreshes", "Token refreshes by outcome",
                               ["outcome"], registry=None)
        self._children = {o: self.counter.labels(o) for o in REFRESH_OUTCOMES}
        self.counts = dict.fromkeys(REFRESH_OUTCOMES, 0)

    def describe(self):
        return self.counter.describe()

    def collect(self):
        for outcome, count in self.counts.items():
            if count:
                self.counts[outcome] = 0
                self._children[outcome].inc(count)
        return self.counter.collect()


class AuthService(Service):
    """
    The auth role: REST under C{/v1} on the public site, account admin on
    the admin site, argon2 hashing in its own thread pool.

    @ivar clock: what the role reads the time from and schedules with (the
        reactor; a C{Clock} in tests).
    """

    log = Logger()

    def __init__(self, config, reactor, nodeId, metrics, gameData, sql, volatile,
                 verifier, tokenKey, directory=None, site=None, admin=None, clock=None,
                 gate=None):
        """
        @param config: the C{[auth]} section.
        @param metrics: the node's Prometheus registry.
        @param gameData: the classes and names rules (L{loadGameData}).
        @param tokenKey: callable() -> the deployment's token signing key,
            read when the role starts.
        @param directory: the L{IDirectory} handed to clients at login.
        @param site: the public L{IWebSite} (None: no REST here).
        @param admin: the L{IAdminSite} (None: no account admin here).
        @param gate: the L{IClientGate} whose maintenance windows refuse
            logins of non-operators (None: never refused).
        """
        self.setName("auth")
        self.config = config
        self.reactor = reactor
        self.nodeId = nodeId
        self.clock = clock or reactor
        self.gameData = gameData
        # The role's SQL, one transaction per method call.
        self.accounts = AccountStore(sql)
        self.sqlLogins = LoginStore(sql)
        self.characters = CharacterStore(sql)
        self.volatile = volatile
        self.verifier = verifier
        self.directory = directory
        self.site = site
        self.admin = admin
        self.gate = gate
        self.tokenKeySource = tokenKey
        registry = metrics
        self.logins = Counter("mmoshard_auth_logins", "Login attempts by outcome",
                              ["outcome"], registry=registry)
        self.refreshes = _RefreshCounter()
        registry.register(self.refreshes)
        self.hashTime = Histogram("mmoshard_auth_password_hash_seconds",
                                  "argon2id time per operation", ["op"],
                                  buckets=HASH_BUCKETS, registry=registry)
        self.activeSessions = Gauge("mmoshard_auth_active_sessions",
                                    "Live logins (unexpired, unrevoked) deployment-wide",
                                    registry=registry)
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)
        self.hasher = PasswordHasher(
            reactor, self.config,
            observe=lambda op, seconds: self.hashTime.labels(op).observe(seconds),
        )
        self.api = AuthAPI(self)
        self.adminAPI = AdminAPI(self)
        self.operatorLogins = OperatorLogins(self)
        self.limits = None
        self.tokenKey = self.refreshTokens = self.issuer = None
        self.loginRecords = None
        self._loops = []
        self._directoryCache = (None, -1.0)

    def loginOutcome(self, outcome):
        self.logins.labels(outcome).inc()

    def refreshOutcome(self, outcome):
        self.refreshes.counts[outcome] += 1

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        self.tokenKey = self.tokenKeySource()
        # Changing the token key changes this one too: every login ends, so
        # nothing remembered under the old key may be taken unchecked.
        self.refreshTokens = RefreshTokens(self.tokenKey)
        self.api.forgetIssued()
        self.issuer = AccessTokens(self.tokenKey)
        self.limits = Limits(self.volatile, self.config)
        self.loginRecords = LoginRecords(self.volatile, self.sqlLogins, self.clock,
                                   self.config.refresh_ttl, self.config.refresh_flush,
                                   self.config.refresh_retry_grace)
        await self.hasher.start()
        self.mount()
        for call, every in ((self.countSessions, self.config.sessions_refresh),
                            (self.purge, PURGE_EVERY)):
            loop = LoopingCall(lambda call=call: Deferred.fromCoroutine(call()))
            loop.clock = self.clock
            loop.start(every, now=True)
            self._loops.append(loop)
        self.loginRecords.start()
        self.log.info("auth role of node {node_id} started: argon2id t={t} m={m}KiB "
                      "p={p} on {threads} hashing thread(s)", node_id=self.nodeId,
                      t=self.config.argon2_time_cost, m=self.config.argon2_memory_kib,
                      p=self.config.argon2_parallelism, threads=self.hasher.threads)

    def mount(self):
        """Put the REST resources on the public and admin sites of this process."""
        cfg, site, admin = self.config, self.site, self.admin
        if site is not None:
            router = Router(self.api, AUTH_ERRORS, cfg.max_body, cfg.trust_forwarded)
            mountRouter(site, router, depth=2)
            site.addOpenAPI(self.api.openapi)
        if admin is not None:
            mountRouter(admin, Router(self.adminAPI, AUTH_ERRORS, cfg.max_body))

    def stopService(self):
        Service.stopService(self)
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        self.hasher.stop()
        if self.loginRecords is not None:
            # The refreshes not yet written reach SQL before it closes.
            return self.loginRecords.stop()

    async def countSessions(self):
        try:
            count = await self.sqlLogins.active(self.clock.seconds())
        except Exception as e:
            self.log.warn("cannot count active sessions: {why}", why=e)
            return
        self.activeSessions.set(count)

    async def purge(self):
        try:
            gone = await self.sqlLogins.purge(self.clock.seconds() - PURGE_AFTER)
        except Exception as e:
            self.log.warn("cannot purge old logins: {why}", why=e)
            return
        if gone:
            self.log.info("purged {count} expired or revoked login(s)", count=gone)

    async def directoryForClients(self):
        """
        @return: role -> [{node_id, endpoints...}] least loaded first, for
            the roles a client talks to; cached for a second or two.
        """
        cached, at = self._directoryCache
        now = self.clock.seconds()
        if cached is not None and 0 <= now - at < 2.0:
            return cached
        result = {role: [] for role in DIRECTORY_ROLES}
        if self.directory is not None:
            entries = await self.directory.list()
            entries.sort(key=lambda e: (e.totalLoad, e.node_id))
            for entry in entries:
                public = {k: v for k, v in entry.endpoints.items() if k != "admin"}
                for role in DIRECTORY_ROLES:
                    if role in entry.roles:
                        result[role].append({"node_id": entry.node_id, **public})
        self._directoryCache = (result, now)
        return result
