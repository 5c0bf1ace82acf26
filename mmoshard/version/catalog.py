"""The release in force, held in memory with the caches that make a check cheap."""

import json

from mmoshard.version import plan as planning

MAX_CACHED = 4096
_EMPTY = {}


class Catalog:
    """
    One published L{Release} ready to answer checks: plans, CDN orders and
    encoded answers are computed once and kept until the next release.
    Caches are bounded and keyed only by values from the release data, so a
    client cannot grow them with made-up builds or regions.
    """

    def __init__(self, release, defaultRegion="", manifestPrefix="/v1/manifests"):
        self.release = release
        self.revision = release.revision
        self.defaultRegion = defaultRegion
        self.manifestPrefix = manifestPrefix
        self.hasMaintenance = bool(release.maintenance)
        self.regions = frozenset(c.region for c in release.cdn)
        # platform -> {build: its text in the release data}; a client may
        # spell a known build otherwise (1.10 for 1.10.0, +metadata).
        self._known = {}
        for name, p in release.platforms.items():
            known = self._known[name] = {}
            for build in [x.source for x in p.patches] + list(p.builds):
                known[build] = build.text
        self._plans = {}
        self._cdn = {}
        self._answers = {}
        self.etags = {
            (name, build.text): info.etag
            for name, p in release.platforms.items()
            for build, info in p.builds.items()
        }
        self.etagSet = frozenset(self.etags.values())
        # Also reachable by the canonical key, so /1.10 finds 1.10.0.
        self._etagsByBuild = {
            (name, build): info.etag
            for name, p in release.platforms.items()
            for build, info in p.builds.items()
        }

    def platform(self, name):
        return self.release.platforms.get(name)

    def knownBuild(self, platform, build):
        """@return: True when C{build} appears in C{platform}'s release data."""
        return build in self._known.get(platform, ())

    def canonicalText(self, platform, build):
        """@return: C{build} as the release data writes it, or None when unknown."""
        return self._known.get(platform, _EMPTY).get(build)

    def etagFor(self, platform, build):
        """@return: the ETag of C{build}'s signed manifest, or None."""
        return self._etagsByBuild.get((platform, build))

    def plan(self, platform, source, target):
        """L{planning.choosePlan}, cached for builds the release data knows."""
        if not self.knownBuild(platform.name, source):
            # No patch starts from an unknown build: the full build.
            return planning.choosePlan(platform, source, target)
        key = (platform.name, source, target)
        found = self._plans.get(key)
        if found is None:
            found = planning.choosePlan(platform, source, target)
            if len(self._plans) < MAX_CACHED:
                self._plans[key] = found
        return found

    def region(self, requested):
        """@return: C{requested} when a CDN serves it, else the default region."""
        return requested if requested in self.regions else self.defaultRegion

    def cdnFor(self, region):
        """
        @return: CDN base URLs for C{region}: its own by priority, then the
            others by priority as fallbacks.
        """
        found = self._cdn.get(region)
        if found is None:
            cdn = self.release.cdn
            own = [c for c in cdn if c.region == region]
            rest = [c for c in cdn if c.region != region]
            key = lambda c: (c.priority, c.region, c.url)  # noqa: E731
            found = tuple(c.url for c in sorted(own, key=key) + sorted(rest, key=key))
            self._cdn[region] = found
        return found

    def maintenance(self, now):
        """@return: (window open now or None, next window to come or None)."""
        active = upcoming = None
        for m in self.release.maintenance:
            if m.activeAt(now):
                active = active or m
            elif m.start > now and upcoming is None:
                upcoming = m
        return active, upcoming

    def manifestURL(self, platform, build):
        return f"{self.manifestPrefix}/{platform}/{build.text}"

    def answer(self, platformName, channelName, build, accountId, region, upcoming):
        """
        @return: (status, encoded JSON body, the build's label for the
            builds-seen metric) of a check outside maintenance.
        """
        platform = self.release.platforms[platformName]
        channel = platform.channels[channelName]
        # The only part of the answer that depends on the account.
        target = planning.offeredBuild(platform, channel, accountId)
        canonical = self.canonicalText(platformName, build)
        # Only builds the release data knows, spelled as it spells them, so
        # that made-up builds or spellings neither fill the cache nor
        # displace the answers most clients get.
        cacheable = canonical is not None and canonical == build.text
        key = (platformName, channelName, canonical, target, region, upcoming)
        if cacheable:
            found = self._answers.get(key)
            if found is not None:
                return found
        decision = planning.decide(
            platform, channel, build, accountId, planFor=self.plan
        )
        body = {
            "status": decision.status,
            "platform": platformName,
            "channel": channelName,
            "build": build.text,
            "latest": channel.latest.text,
            "minimum": channel.minimum.text,
            "target": decision.target.text,
            "notes_url": channel.notes_url,
            "manifest_url": self.manifestURL(platformName, decision.target),
            "plan": decision.plan.toJSON() if decision.plan else None,
            "region": region,
            "cdn": list(self.cdnFor(region)),
            "maintenance": upcoming.toJSON() if upcoming else None,
            "revision": self.revision,
        }
        result = (
            decision.status,
            json.dumps(body, separators=(",", ":")).encode(),
            canonical or "other",
        )
        if cacheable and len(self._answers) < MAX_CACHED:
            self._answers[key] = result
        return result
