"""Release data: the files under etc/releases/, checked and turned into the published release document."""

import datetime
import json
import os
import re
import tomllib

import attrs

from mmoshard.gate import GateRules, Maintenance, MalformedBuild, parseBuild

PLATFORMS = ("windows", "mac", "linux", "android", "ios", "web")
CHANNELS = ("live", "ptr", "beta")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ReleaseDataError(Exception):
    """Release data that cannot be published; C{problems} lists every (where, what)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(
            "invalid release data:\n"
            + "\n".join(f"  {where}: {what}" for where, what in self.problems)
        )


@attrs.frozen
class Patch:
    """A delta that turns build C{source} into build C{target}."""

    source: object  # Build
    target: object  # Build
    path: str  # relative to a CDN base URL
    size: int
    sha256: str

    def toJSON(self):
        return {
            "from": self.source.text,
            "to": self.target.text,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
        }


@attrs.frozen
class BuildInfo:
    """One published build: its full download size and its signed manifest's ETag."""

    build: object  # Build
    size: int
    files: int
    etag: str = ""

    def toJSON(self):
        return {"size": self.size, "files": self.files, "etag": self.etag}


@attrs.frozen
class Channel:
    """
    What one channel of one platform offers: C{latest} to C{rollout} percent
    of accounts and C{previous} to the others; builds below C{minimum} must
    update.  When C{minimum} reaches C{latest} the build is forced on all.
    """

    name: str
    latest: object  # Build
    minimum: object  # Build
    previous: object = None  # Build or None (then rollout is 100)
    rollout: float = 100.0
    notes_url: str = ""

    @property
    def forced(self):
        return self.minimum >= self.latest

    def toJSON(self):
        return {
            "latest": self.latest.text,
            "minimum": self.minimum.text,
            "previous": self.previous.text if self.previous else None,
            "rollout": self.rollout,
            "notes_url": self.notes_url,
        }


@attrs.frozen
class PlatformRelease:
    """A platform's channels, builds and delta patches."""

    name: str
    channels: dict  # name -> Channel
    builds: dict  # Build -> BuildInfo
    patches: tuple  # of Patch

    def toJSON(self):
        return {
            "channels": {n: c.toJSON() for n, c in sorted(self.channels.items())},
            "builds": {
                info.build.text: info.toJSON()
                for info in sorted(self.builds.values(), key=lambda i: i.build)
            },
            "patches": [p.toJSON() for p in self.patches],
        }


@attrs.frozen
class CdnEndpoint:
    """A CDN base URL serving one region; lower C{priority} is tried first."""

    region: str
    url: str
    priority: int

    def toJSON(self):
        return {"region": self.region, "url": self.url, "priority": self.priority}


@attrs.frozen
class Release:
    """One publication: every platform, the CDNs and the maintenance windows."""

    revision: int
    published_at: float
    platforms: dict  # name -> PlatformRelease
    cdn: tuple  # of CdnEndpoint
    maintenance: tuple  # of Maintenance, by start
    source: str = ""

    def toJSON(self):
        return {
            "format": 1,
            "revision": self.revision,
            "published_at": self.published_at,
            "source": self.source,
            "platforms": {n: p.toJSON() for n, p in sorted(self.platforms.items())},
            "cdn": [c.toJSON() for c in self.cdn],
            "maintenance": [m.toJSON() for m in self.maintenance],
        }

    def encode(self):
        return json.dumps(self.toJSON(), sort_keys=True).encode()

    def gateRules(self):
        """@return: the L{GateRules} every session handshake enforces."""
        minimum = {}
        for name, platform in self.platforms.items():
            for channelName, channel in platform.channels.items():
                minimum[f"{name}/{channelName}"] = channel.minimum
        return GateRules(self.revision, minimum, self.maintenance)

    @classmethod
    def decode(cls, raw):
        """@return: the L{Release} of a published document (bytes or str)."""
        data = json.loads(raw)
        platforms = {}
        for name, p in data["platforms"].items():
            builds = {}
            for text, info in p["builds"].items():
                build = parseBuild(text)
                builds[build] = BuildInfo(build, info["size"], info["files"], info["etag"])
            channels = {
                n: Channel(
                    n,
                    parseBuild(c["latest"]),
                    parseBuild(c["minimum"]),
                    parseBuild(c["previous"]) if c.get("previous") else None,
                    float(c["rollout"]),
                    c.get("notes_url", ""),
                )
                for n, c in p["channels"].items()
            }
            patches = tuple(
                Patch(
                    parseBuild(x["from"]),
                    parseBuild(x["to"]),
                    x["path"],
                    x["size"],
                    x["sha256"],
                )
                for x in p["patches"]
            )
            platforms[name] = PlatformRelease(name, channels, builds, patches)
        return cls(
            revision=int(data["revision"]),
            published_at=float(data["published_at"]),
            platforms=platforms,
            cdn=tuple(CdnEndpoint(**c) for c in data["cdn"]),
            maintenance=tuple(Maintenance.fromJSON(m) for m in data["maintenance"]),
            source=data.get("source", ""),
        )


@attrs.frozen
class LoadedRelease:
    """Release data read from files: the release (no revision yet) and each build's manifest."""

    release: Release
    manifests: dict  # (platform, build text) -> manifest dict (unsigned)


def _timestamp(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError("expected a date-time such as 2026-12-01T06:00:00Z or Unix seconds")


class _Reader:
    """Collects every problem in a release directory instead of stopping at the first."""

    def __init__(self, directory):
        self.directory = directory
        self.problems = []

    def problem(self, where, what):
        self.problems.append((where, what))

    def rel(self, *parts):
        return os.path.join(*parts)

    def toml(self, name):
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            return None
        except OSError as e:
            self.problem(name, f"cannot read: {e.strerror}")
        except tomllib.TOMLDecodeError as e:
            self.problem(name, f"not valid TOML: {e}")
        return {}

    def build(self, where, value):
        try:
            return parseBuild(value)
        except MalformedBuild as e:
            self.problem(where, str(e))
            return None

    def keys(self, where, table, known):
        for key in table:
            if key not in known:
                self.problem(
                    f"{where}.{key}", "unknown key (known: " + ", ".join(sorted(known)) + ")"
                )

    def readCommon(self):
        raw = self.toml("release.toml") or {}
        self.keys("release.toml", raw, ("cdn", "maintenance"))
        cdn = []
        for i, entry in enumerate(raw.get("cdn", [])):
            where = f"release.toml: cdn[{i}]"
            if not isinstance(entry, dict):
                self.problem(where, "expected a table")
                continue
            self.keys(where, entry, ("region", "url", "priority"))
            region, url = entry.get("region"), entry.get("url")
            priority = entry.get("priority", 100)
            if not isinstance(region, str) or not _REGION.match(region):
                self.problem(where + ".region", "expected a region name such as \"eu\"")
                continue
            if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
                self.problem(where + ".url", "expected an http(s):// base URL")
                continue
            if not isinstance(priority, int) or isinstance(priority, bool):
                self.problem(where + ".priority", "expected an integer")
                continue
            cdn.append(CdnEndpoint(region, url.rstrip("/"), priority))
        windows = []
        for i, entry in enumerate(raw.get("maintenance", [])):
            where = f"release.toml: maintenance[{i}]"
            if not isinstance(entry, dict):
                self.problem(where, "expected a table")
                continue
            self.keys(where, entry, ("start", "end", "message"))
            try:
                start = _timestamp(entry.get("start"))
                end = _timestamp(entry.get("end"))
            except ValueError as e:
                self.problem(where, str(e))
                continue
            if end <= start:
                self.problem(where + ".end", "must be after start")
                continue
            message = entry.get("message", "The servers are down for maintenance.")
            if not isinstance(message, str):
                self.problem(where + ".message", "expected a string")
                continue
            windows.append(Maintenance(start, end, message))
        windows.sort(key=lambda m: m.start)
        return tuple(sorted(cdn, key=lambda c: (c.priority, c.region, c.url))), tuple(
            windows
        )

    def readManifests(self, platform):
        """@return: {Build: (BuildInfo, manifest dict)} for manifests/<platform>/*.json."""
        found = {}
        folder = os.path.join(self.directory, "manifests", platform)
        if not os.path.isdir(folder):
            return found
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            where = f"manifests/{platform}/{name}"
            build = self.build(where, name[: -len(".json")])
            if build is None:
                continue
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                self.problem(where, f"cannot read JSON: {e}")
                continue
            files = data.get("files") if isinstance(data, dict) else None
            if not isinstance(files, list):
                self.problem(where, "expected {\"files\": [{path, size, sha256}, ...]}")
                continue
            clean, total, ok = [], 0, True
            seen = set()
            for j, f in enumerate(files):
                fw = f"{where}: files[{j}]"
                if not (
                    isinstance(f, dict)
                    and isinstance(f.get("path"), str)
                    and f["path"]
                    and not f["path"].startswith("/")
                    and ".." not in f["path"].split("/")
                ):
                    self.problem(fw, "needs a relative path without '..'")
                    ok = False
                    continue
                size = f.get("size")
                if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                    self.problem(fw + ".size", "expected a size in bytes")
                    ok = False
                    continue
                if not isinstance(f.get("sha256"), str) or not _SHA256.match(f["sha256"]):
                    self.problem(fw + ".sha256", "expected 64 lowercase hex digits")
                    ok = False
                    continue
                if f["path"] in seen:
                    self.problem(fw, f"path {f['path']!r} listed twice")
                    ok = False
                    continue
                seen.add(f["path"])
                clean.append({"path": f["path"], "size": size, "sha256": f["sha256"]})
                total += size
            if not ok:
                continue
            clean.sort(key=lambda f: f["path"])
            manifest = {
                "platform": platform,
                "build": build.text,
                "size": total,
                "files": clean,
            }
            found[build] = (BuildInfo(build, total, len(clean)), manifest)
        return found

    def readPlatform(self, platform):
        name = f"{platform}.toml"
        raw = self.toml(name)
        if raw is None:
            return None, {}
        self.keys(name, raw, ("channels", "patches"))
        manifests = self.readManifests(platform)
        builds = {b: info for b, (info, _) in manifests.items()}

        def known(where, build):
            if build is not None and build not in builds:
                self.problem(where, f"build {build.text} has no manifests/{platform}/{build.text}.json")
                return False
            return build is not None

        channels = {}
        for cname, c in (raw.get("channels") or {}).items():
            where = f"{name}: channels.{cname}"
            if cname not in CHANNELS:
                self.problem(where, "unknown channel (known: " + ", ".join(CHANNELS) + ")")
                continue
            if not isinstance(c, dict):
                self.problem(where, "expected a table")
                continue
            self.keys(where, c, ("latest", "minimum", "previous", "rollout", "notes_url"))
            latest = self.build(where + ".latest", c.get("latest"))
            minimum = self.build(where + ".minimum", c.get("minimum", c.get("latest")))
            previous = None
            if "previous" in c:
                previous = self.build(where + ".previous", c["previous"])
            rollout = c.get("rollout", 100)
            notes = c.get("notes_url", "")
            ok = known(where + ".latest", latest) and minimum is not None
            if previous is not None:
                ok = known(where + ".previous", previous) and ok
            if not isinstance(rollout, (int, float)) or isinstance(rollout, bool) or not (
                0 <= rollout <= 100
            ):
                self.problem(where + ".rollout", "expected a percentage from 0 to 100")
                ok = False
            if not isinstance(notes, str):
                self.problem(where + ".notes_url", "expected a URL string")
                ok = False
            if not ok:
                continue
            if minimum > latest:
                self.problem(where + ".minimum", "must not be above latest")
                continue
            if previous is not None and previous >= latest:
                self.problem(where + ".previous", "must be below latest")
                continue
            if rollout < 100 and previous is None and minimum < latest:
                self.problem(
                    where + ".previous",
                    "needed when rollout is under 100: the build offered to the others",
                )
                continue
            channels[cname] = Channel(cname, latest, minimum, previous, float(rollout), notes)

        patches = []
        for i, p in enumerate(raw.get("patches") or []):
            where = f"{name}: patches[{i}]"
            if not isinstance(p, dict):
                self.problem(where, "expected a table")
                continue
            self.keys(where, p, ("from", "to", "path", "size", "sha256"))
            source = self.build(where + ".from", p.get("from"))
            target = self.build(where + ".to", p.get("to"))
            ok = known(where + ".to", target) and source is not None
            path, size, sha = p.get("path"), p.get("size"), p.get("sha256")
            if not isinstance(path, str) or not path or path.startswith("/"):
                self.problem(where + ".path", "expected a path relative to the CDN base")
                ok = False
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                self.problem(where + ".size", "expected a size in bytes")
                ok = False
            if not isinstance(sha, str) or not _SHA256.match(sha):
                self.problem(where + ".sha256", "expected 64 lowercase hex digits")
                ok = False
            if ok and source == target:
                self.problem(where, "from and to are the same build")
                ok = False
            if ok:
                patches.append(Patch(source, target, path, size, sha))
        patches.sort(key=lambda p: (p.source, p.target, p.path))
        release = PlatformRelease(platform, channels, builds, tuple(patches))
        return release, {(platform, b.text): m for b, (_, m) in manifests.items()}


def loadReleaseDir(directory):
    """
    Read and check the release data in C{directory} (format: docs/version.md).

    @return: a L{LoadedRelease} with revision 0.
    @raise ReleaseDataError: listing every problem found.
    """
    reader = _Reader(directory)
    if not os.path.isdir(directory):
        raise ReleaseDataError([(directory, "no such directory")])
    for name in sorted(os.listdir(directory)):
        if name.endswith(".toml") and name[:-5] not in PLATFORMS + ("release",):
            reader.problem(
                name,
                "unknown file (platforms: " + ", ".join(PLATFORMS) + "; and release.toml)",
            )
    cdn, maintenance = reader.readCommon()
    platforms, manifests = {}, {}
    for platform in PLATFORMS:
        release, found = reader.readPlatform(platform)
        if release is not None:
            platforms[platform] = release
            manifests.update(found)
    if not platforms and not reader.problems:
        reader.problem(directory, "no <platform>.toml file: nothing to publish")
    if reader.problems:
        raise ReleaseDataError(reader.problems)
    release = Release(0, 0.0, platforms, cdn, maintenance, os.path.abspath(directory))
    return LoadedRelease(release, manifests)
