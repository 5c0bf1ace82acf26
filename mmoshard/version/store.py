"""Published releases in the volatile store: publish, rollback, history, and the change channel."""

import attrs
from twisted.logger import Logger

from mmoshard.gate import publishRules
from mmoshard.version.releases import BuildInfo, PlatformRelease, Release
from mmoshard.version.signing import envelopeETag, signManifest

CURRENT_KEY = "release:current"
COUNTER_KEY = "release:counter"
REVISIONS_KEY = "release:revisions"  # sorted set: revision -> published_at
CHANGED_CHANNEL = "release:changed"
KEEP_REVISIONS = 20


def docKey(revision):
    return f"release:doc:{revision}"


def manifestKey(etag):
    return "release:manifest:" + etag.strip('"')


class NothingPublished(LookupError):
    """No release has been published in this store yet."""


class NoEarlierRevision(LookupError):
    """A rollback found no kept revision to go back to."""


@attrs.frozen
class RevisionSummary:
    """One kept publication, for `mmoshard release status`."""

    revision: int
    published_at: float
    current: bool


def signRelease(loaded, key, revision, now):
    """
    Sign every manifest of C{loaded} and stamp the release.

    @return: (L{Release} with ETags and revision, {etag: envelope bytes}).
    """
    envelopes = {}
    platforms = {}
    for name, platform in loaded.release.platforms.items():
        builds = {}
        for build, info in platform.builds.items():
            envelope = signManifest(key, loaded.manifests[(name, build.text)])
            etag = envelopeETag(envelope)
            envelopes[etag] = envelope
            builds[build] = BuildInfo(build, info.size, info.files, etag)
        platforms[name] = PlatformRelease(name, platform.channels, builds, platform.patches)
    release = attrs.evolve(
        loaded.release, revision=revision, published_at=now, platforms=platforms
    )
    return release, envelopes


class ReleaseStore:
    """
    Releases kept in an L{IVolatileStore}: each publication is a numbered
    revision; C{release:current} names the one in force; manifests are kept
    once per content under their ETag.  Every change is announced on
    L{CHANGED_CHANNEL} and written as gate rules for L{mmoshard.gate.StoreGate}.
    """

    log = Logger()

    def __init__(self, volatile, keep=KEEP_REVISIONS):
        self.volatile = volatile
        self.keep = keep

    async def currentRevision(self):
        raw = await self.volatile.get(CURRENT_KEY)
        return int(raw) if raw else None

    async def load(self, revision=None):
        """
        @return: the current L{Release} (or the given revision).
        @raise NothingPublished: when there is none.
        """
        if revision is None:
            revision = await self.currentRevision()
            if revision is None:
                raise NothingPublished("no release published yet")
        raw = await self.volatile.get(docKey(revision))
        if raw is None:
            raise NothingPublished(f"revision {revision} is not kept")
        return Release.decode(raw)

    async def manifest(self, etag):
        """@return: the signed envelope (bytes) stored under C{etag}, or None."""
        return await self.volatile.get(manifestKey(etag))

    async def publish(self, loaded, key, now):
        """
        Sign and publish C{loaded} (a L{LoadedRelease}) as a new revision
        that every process sees at once.

        @return: the published L{Release}.
        """
        revision = await self.volatile.incr(COUNTER_KEY)
        release, envelopes = signRelease(loaded, key, revision, now)
        for etag, envelope in envelopes.items():
            await self.volatile.set(manifestKey(etag), envelope)
        await self.volatile.set(docKey(revision), release.encode())
        await self.volatile.zadd(REVISIONS_KEY, {str(revision): float(revision)})
        await self._makeCurrent(release)
        await self._prune()
        self.log.info(
            "published release revision {revision} from {source}",
            revision=revision,
            source=release.source,
        )
        return release

    async def rollback(self, to=None):
        """
        Make an earlier kept revision current again: C{to}, or the one just
        before the current.

        @return: the L{Release} now current.
        @raise NoEarlierRevision: when there is none to go back to.
        """
        current = await self.currentRevision()
        if to is None:
            if current is None:
                raise NoEarlierRevision("nothing is published")
            earlier = await self.volatile.zrangebyscore(
                REVISIONS_KEY, float("-inf"), current - 1
            )
            if not earlier:
                raise NoEarlierRevision(f"no kept revision before {current}")
            to = int(earlier[-1])
        try:
            release = await self.load(to)
        except NothingPublished:
            raise NoEarlierRevision(f"revision {to} is not kept")
        await self._makeCurrent(release)
        self.log.info(
            "rolled back from release revision {current} to {revision}",
            current=current,
            revision=to,
        )
        return release

    async def history(self):
        """@return: the kept revisions, newest first, as L{RevisionSummary}s."""
        current = await self.currentRevision()
        revisions = await self.volatile.zrangebyscore(
            REVISIONS_KEY, float("-inf"), float("inf")
        )
        out = []
        for rev in reversed(revisions):
            try:
                release = await self.load(int(rev))
            except NothingPublished:
                continue
            out.append(RevisionSummary(release.revision, release.published_at, release.revision == current))
        return out

    async def _makeCurrent(self, release):
        await self.volatile.set(CURRENT_KEY, str(release.revision))
        await publishRules(self.volatile, release.gateRules())
        await self.volatile.publish(CHANGED_CHANNEL, str(release.revision).encode())

    async def _prune(self):
        revisions = [
            int(r)
            for r in await self.volatile.zrangebyscore(
                REVISIONS_KEY, float("-inf"), float("inf")
            )
        ]
        current = await self.currentRevision()
        drop = [r for r in revisions[: max(0, len(revisions) - self.keep)] if r != current]
        if not drop:
            return
        kept = set()
        for r in revisions:
            if r in drop:
                continue
            try:
                release = await self.load(r)
            except NothingPublished:
                continue
            for platform in release.platforms.values():
                kept.update(info.etag for info in platform.builds.values())
        dropped = set()
        for r in drop:
            try:
                release = await self.load(r)
            except NothingPublished:
                release = None
            if release is not None:
                for platform in release.platforms.values():
                    dropped.update(info.etag for info in platform.builds.values())
            await self.volatile.delete(docKey(r))
            await self.volatile.zrem(REVISIONS_KEY, str(r))
        stale = dropped - kept
        if stale:
            await self.volatile.delete(*(manifestKey(e) for e in stale))
