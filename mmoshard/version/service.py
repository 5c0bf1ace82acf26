"""The version role's service: its config, metrics, and the release in force kept current across processes."""

import os

import attrs
from prometheus_client import Counter, Gauge
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mmoshard.config import Field, positive
from mmoshard.store.follow import Follower
from mmoshard.version.catalog import Catalog
from mmoshard.version.releases import ReleaseDataError, loadReleaseDir
from mmoshard.version.signing import DEV_KEY_FILE, SigningKeyError, loadSigningKey
from mmoshard.version.store import CHANGED_CHANNEL, NothingPublished, ReleaseStore

VERSION_FIELDS = {
    "releases_dir": Field("datapath", "etc/releases", help="release data to publish (docs/version.md)"),
    "publish_at_start": Field(
        "bool", True, help="publish releases_dir at start when nothing is published yet"
    ),
    "signing_key": Field(
        "str", None, help="Ed25519 private key (PEM) signing manifests; or MMOSHARD_RELEASE_SIGNING_KEY"
    ),
    "region_header": Field("str", "X-Client-Region", help="request header naming the client's region"),
    "default_region": Field("str", "", help="CDN region for clients that name none we serve"),
    "manifest_max_age": Field("int", 300, positive, "Cache-Control max-age of manifests, seconds"),
    "refresh": Field("float", 5.0, positive, "seconds between re-reads besides change announcements"),
}


@attrs.frozen
class VersionConfig:
    """The parsed [version] table."""

    releases_dir: str
    publish_at_start: bool
    signing_key: str | None
    region_header: str
    default_region: str
    manifest_max_age: int
    refresh: float


class VersionMetrics:
    """Checks by outcome and platform, client builds seen, manifest requests, revision in force."""

    def __init__(self, registry):
        self.checks = Counter(
            "mmoshard_version_checks",
            "Version checks by outcome (ok, update_available, update_required, "
            "maintenance, or an error code) and platform",
            ["outcome", "platform"],
            registry=registry,
        )
        self.builds = Counter(
            "mmoshard_version_client_builds",
            "Version checks by the client's platform, channel and build "
            "(builds unknown to the release data count as 'other')",
            ["platform", "channel", "build"],
            registry=registry,
        )
        self.manifests = Counter(
            "mmoshard_version_manifest_requests",
            "Manifest requests by result (ok, not_modified, not_found)",
            ["result"],
            registry=registry,
        )
        self.revision = Gauge(
            "mmoshard_version_release_revision",
            "Revision of the release in force in this process (0: none)",
            registry=registry,
        )
        self._children = {}

    def _child(self, metric, labels):
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def check(self, outcome, platform):
        self._child(self.checks, (outcome, platform)).inc()

    def seen(self, platform, channel, build):
        self._child(self.builds, (platform, channel, build)).inc()

    def manifest(self, result):
        self._child(self.manifests, (result,)).inc()


def signingKeyFor(config, cfg, log=None):
    """
    The manifest signing key: configured (C{version.signing_key} or
    C{MMOSHARD_RELEASE_SIGNING_KEY}), else a development key generated in
    the var directory.  A development key on a shared store is warned
    about: clients cannot be given a stable public key for it.
    """
    from mmoshard.version.signing import ENV_KEY

    devPath = os.path.join(config.node.var_dir, DEV_KEY_FILE)
    configured = bool(cfg.signing_key or os.environ.get(ENV_KEY))
    key = loadSigningKey(cfg.signing_key, devPath=devPath)
    if not configured and config.volatile.shared and log is not None:
        log.warn(
            "signing manifests with the development key {path}: set "
            "version.signing_key or {env} in production (docs/version.md)",
            path=devPath,
            env=ENV_KEY,
        )
    return key


class VersionService(Service):
    """
    Serves the version check and manifests from the release in force, which
    it re-reads when a publication is announced and every C{refresh} seconds.
    """

    log = Logger()

    def __init__(self, config, nodeConfig, reactor, nodeId, metrics, volatile, verifier,
                 site=None, admin=None):
        """
        @param config: the C{[version]} section; C{nodeConfig} the whole
            config (the release signing key may come from C{[secrets]}).
        @param metrics: the node's Prometheus registry.
        @param site: the public L{IWebSite} (None: no version REST here).
        @param admin: the L{IAdminSite} (None: no publish route here).
        """
        self.setName("role:version")
        self.cfg = config
        self.nodeConfig = nodeConfig
        self.clock = reactor
        self.nodeId = nodeId
        self.volatile = volatile
        self.verifier = verifier
        self.site = site
        self.admin = admin
        self.metrics = VersionMetrics(metrics)
        self.regionHeader = self.cfg.region_header.encode()
        self.manifestCacheControl = (
            f"public, max-age={self.cfg.manifest_max_age}".encode()
        )
        self.catalog = None
        self.manifests = {}  # etag -> signed envelope, for the catalog in force
        self.store = ReleaseStore(volatile)
        self._follower = None

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._start())

    async def _start(self):
        self._follower = Follower(
            self.volatile, self.clock, CHANGED_CHANNEL, self._read, self.cfg.refresh,
            "the release in force",
        )
        await self._follower.start()
        if self.catalog is None and self.cfg.publish_at_start:
            await self._publishAtStart()
        if self.site is not None:
            from mmoshard.version.web import mount

            mount(self.site, self)
        if self.admin is not None:
            from mmoshard.version.admin import mountAdmin

            mountAdmin(self.admin, self)

    async def publish(self, directory=None):
        """
        Check, sign and publish the release data in C{directory} (default
        C{version.releases_dir}) and put it in force here at once.

        @return: (the published L{Release}, the signing key).
        @raise ReleaseDataError: for invalid release data.
        @raise SigningKeyError: when no signing key can be had.
        """
        loaded = loadReleaseDir(directory or self.cfg.releases_dir)
        key = signingKeyFor(self.nodeConfig, self.cfg, self.log)
        release = await self.store.publish(loaded, key, self.clock.seconds())
        await self.refresh()
        return release, key

    async def _publishAtStart(self):
        try:
            await self.publish()
        except ReleaseDataError as e:
            if not os.path.isdir(self.cfg.releases_dir):
                self.log.warn(
                    "version role of node {node_id}: no release data at {path}; "
                    "nothing to serve until `mmoshard release publish`",
                    node_id=self.nodeId,
                    path=self.cfg.releases_dir,
                )
                return
            self.log.error(
                "version role of node {node_id} cannot publish {path}: {why}",
                node_id=self.nodeId,
                path=self.cfg.releases_dir,
                why=e,
            )
        except SigningKeyError as e:
            self.log.error(
                "version role of node {node_id} cannot publish {path}: {why}",
                node_id=self.nodeId,
                path=self.cfg.releases_dir,
                why=e,
            )
        except Exception:
            self.log.failure("version role cannot publish at start")

    def refresh(self):
        """
        Re-read the current revision and swap it in when it changed.

        @return: a Deferred firing with the catalog in force after it (None
            when nothing is published); calls made while one runs are folded
            into one more run after it.
        """
        return self._follower.refresh().addCallback(lambda _: self.catalog)

    async def _read(self):
        try:
            revision = await self.store.currentRevision()
            if revision is None:
                return
            if self.catalog is not None and self.catalog.revision == revision:
                return
            release = await self.store.load(revision)
        except NothingPublished:
            return
        self.useRelease(release)

    def useRelease(self, release):
        """Put C{release} in force in this process."""
        previous = self.catalog
        self.catalog = Catalog(release, self.cfg.default_region)
        wanted = self.catalog.etagSet
        self.manifests = {e: m for e, m in self.manifests.items() if e in wanted}
        self.metrics.revision.set(release.revision)
        self.log.info(
            "version role of node {node_id} serves release revision {revision} "
            "(was {previous})",
            node_id=self.nodeId,
            revision=release.revision,
            previous=previous.revision if previous else None,
        )

    def fetchManifest(self, etag):
        """@return: a Deferred firing with the envelope under C{etag} (or None), cached."""

        async def fetch():
            envelope = await self.store.manifest(etag)
            if envelope is not None and self.catalog is not None:
                if etag in self.catalog.etagSet:
                    self.manifests[etag] = envelope
            return envelope

        return Deferred.fromCoroutine(fetch())

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self):
        if self._follower is not None:
            await self._follower.stop()


def makeService(ctx):
    """The version role's factory: its service, given what the role declares."""
    from mmoshard.interfaces import IAdminSite, ITokenVerifier, IVolatileStore, IWebSite

    return VersionService(
        ctx.config, ctx.nodeConfig, ctx.reactor, ctx.nodeId, ctx.metrics,
        **ctx.providers(
            volatile=IVolatileStore, verifier=ITokenVerifier, site=IWebSite, admin=IAdminSite
        ),
    )
