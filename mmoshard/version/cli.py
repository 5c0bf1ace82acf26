"""`mmoshard release publish|rollback|status|pubkey`: the operator's handle on the version role's releases."""

import json
import os
import sys
import time

from mmoshard.command import CommandError


def arguments(parser):
    """Add the `release` subcommands to C{parser}."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p):
        p.add_argument("--config", metavar="PATH", help="node config file (TOML): [volatile] and [version]")
        return p

    p = common(sub.add_parser("publish", help="check, sign and publish the release data"))
    p.add_argument("--dir", metavar="DIR", help="release data directory (default: version.releases_dir)")
    p.add_argument("--dry-run", action="store_true", help="only check and sign; publish nothing")
    p = common(sub.add_parser("rollback", help="put an earlier publication back in force"))
    p.add_argument("--to", type=int, metavar="REVISION", help="revision to go back to (default: the one before)")
    p = common(sub.add_parser("status", help="show the release in force and the kept revisions"))
    p.add_argument("--json", action="store_true", help="print the release document as JSON")
    common(sub.add_parser("pubkey", help="print the manifest signing public key"))


def _versionConfig(config):
    """The [version] table of C{config}'s file, even when the version role is not hosted there."""
    from mmoshard.plugins.version import version as role

    if "version" in config.roles:
        return config.roles["version"]
    raw = {}
    if config.path:
        import tomllib

        with open(config.path, "rb") as f:
            raw = tomllib.load(f)
    return role.parseConfig(raw.get("version", {}), "version")


def _load(args):
    from mmoshard.config import ConfigError, loadConfig

    try:
        config = loadConfig(args.config)
        return config, _versionConfig(config)
    except ConfigError as e:
        raise CommandError(str(e)) from None


def _openStore(reactor, config, action):
    from mmoshard.store.volatile import makeVolatileStore

    cfg = config.volatile
    store = makeVolatileStore(cfg.url, reactor, cfg.prefix, cfg.timeout)
    store.open()
    return store


def _adminURL(config, action):
    """The running server's admin URL for C{action}, on the embedded default."""
    from mmoshard.config import endpointPort


    endpoint = config.listen.admin
    port = endpointPort(endpoint) if endpoint else None
    if not port:
        raise CommandError(
            f"the volatile store is {config.volatile.url} and the admin site is off: "
            f"`release {action}` cannot reach the server (configure a redis:// store "
            "or [listen] admin)"
        )
    return f"http://127.0.0.1:{port}/version/{action}"


async def _viaAdmin(reactor, config, action, body=None):
    """
    On the embedded default (memory:// store) only the server process holds
    the releases: ask its admin site (loopback) to act.

    @return: the parsed JSON answer.
    """
    import treq


    url = _adminURL(config, action)
    try:
        if body is None:
            response = await treq.get(url, timeout=30, persistent=False)
        else:
            response = await treq.post(
                url,
                json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                timeout=60,
                persistent=False,
            )
        answer = json.loads(await response.content())
    except Exception as e:
        raise CommandError(
            f"the volatile store is {config.volatile.url}, so `release {action}` goes "
            f"through the server's admin site, which does not answer at {url}: {e}"
        ) from None
    if response.code == 404 and action != "status":
        raise CommandError(f"the server at {url} does not run the version role")
    if response.code >= 400 and not (action == "status" and response.code == 404):
        raise CommandError(answer.get("error", {}).get("message", f"HTTP {response.code}"))
    return response.code, answer


def _when(seconds):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _summary(release, out):
    for name, platform in sorted(release.platforms.items()):
        for cname, c in sorted(platform.channels.items()):
            rollout = "" if c.rollout >= 100 or c.forced else f" ({c.rollout:g}% rollout, others {c.previous})"
            print(
                f"  {name}/{cname}: latest {c.latest}{rollout}, minimum {c.minimum}"
                f"{' (forced)' if c.forced else ''}; {len(platform.builds)} builds, "
                f"{len(platform.patches)} patches",
                file=out,
            )
    for m in release.maintenance:
        print(f"  maintenance {_when(m.start)} .. {_when(m.end)}: {m.message}", file=out)


async def _publish(reactor, args, config, cfg, out):
    from mmoshard.version.releases import ReleaseDataError, loadReleaseDir
    from mmoshard.version.service import signingKeyFor
    from mmoshard.version.signing import ENV_KEY, SigningKeyError, keyId
    from mmoshard.version.store import ReleaseStore, signRelease

    directory = args.dir or cfg.releases_dir
    try:
        loaded = loadReleaseDir(directory)
        key = signingKeyFor(config, cfg)
    except (ReleaseDataError, SigningKeyError) as e:
        raise CommandError(str(e)) from None
    if config.volatile.shared and not (cfg.signing_key or os.environ.get(ENV_KEY)):
        print(
            f"warning: signing with the development key in {config.node.var_dir}/; "
            f"set version.signing_key or {ENV_KEY} in production",
            file=sys.stderr,
        )
    if args.dry_run:
        release, envelopes = signRelease(loaded, key, 0, time.time())
        print(f"{directory}: valid; {len(envelopes)} manifests signed with key {keyId(key)}", file=out)
        _summary(release, out)
        return 0
    if not config.volatile.shared:
        from mmoshard.version.releases import Release

        _, answer = await _viaAdmin(reactor, config, "publish", {"dir": os.path.abspath(directory)})
        release = Release.decode(json.dumps(answer["release"]))
        print(f"published revision {release.revision} through the server's admin site "
              f"(manifests signed with key {answer['key_id']})", file=out)
        _summary(release, out)
        return 0
    store = _openStore(reactor, config, "publish")
    try:
        release = await ReleaseStore(store).publish(loaded, key, time.time())
    finally:
        await store.close()
    print(
        f"published revision {release.revision} from {directory} "
        f"(manifests signed with key {keyId(key)})",
        file=out,
    )
    _summary(release, out)
    return 0


async def _rollback(reactor, args, config, out):
    from mmoshard.version.store import NoEarlierRevision, ReleaseStore

    if not config.volatile.shared:
        from mmoshard.version.releases import Release

        _, answer = await _viaAdmin(reactor, config, "rollback", {"to": args.to})
        release = Release.decode(json.dumps(answer["release"]))
        print(f"revision {release.revision} is in force again", file=out)
        _summary(release, out)
        return 0
    store = _openStore(reactor, config, "rollback")
    try:
        release = await ReleaseStore(store).rollback(args.to)
    except NoEarlierRevision as e:
        raise CommandError(str(e)) from None
    finally:
        await store.close()
    print(f"revision {release.revision} (published {_when(release.published_at)}) is in force again", file=out)
    _summary(release, out)
    return 0


async def _status(reactor, args, config, out):
    from mmoshard.version.store import NothingPublished, ReleaseStore

    if not config.volatile.shared:
        return await _statusViaAdmin(reactor, args, config, out)
    store = _openStore(reactor, config, "status")
    try:
        releases = ReleaseStore(store)
        try:
            release = await releases.load()
        except NothingPublished:
            print("nothing published yet: mmoshard release publish", file=out)
            return 1
        if args.json:
            print(json.dumps(release.toJSON(), indent=2, sort_keys=True), file=out)
            return 0
        print(
            f"revision {release.revision} in force, published {_when(release.published_at)} "
            f"from {release.source}",
            file=out,
        )
        _summary(release, out)
        print("kept revisions:", file=out)
        for h in await releases.history():
            print(f"  {'*' if h.current else ' '} {h.revision}  {_when(h.published_at)}", file=out)
    finally:
        await store.close()
    return 0


async def _statusViaAdmin(reactor, args, config, out):
    from mmoshard.version.releases import Release

    code, answer = await _viaAdmin(reactor, config, "status")
    if code == 404:
        print("nothing published yet: mmoshard release publish", file=out)
        return 1
    if args.json:
        print(json.dumps(answer["release"], indent=2, sort_keys=True), file=out)
        return 0
    release = Release.decode(json.dumps(answer["release"]))
    print(
        f"revision {release.revision} in force, published {_when(release.published_at)} "
        f"from {release.source}",
        file=out,
    )
    _summary(release, out)
    print("kept revisions:", file=out)
    for h in answer["history"]:
        print(f"  {'*' if h['current'] else ' '} {h['revision']}  {_when(h['published_at'])}", file=out)
    return 0


def _pubkey(config, cfg, out):
    from mmoshard.version.service import signingKeyFor
    from mmoshard.version.signing import SigningKeyError, keyId, publicKeyBytes, publicKeyPEM

    try:
        key = signingKeyFor(config, cfg)
    except SigningKeyError as e:
        raise CommandError(str(e)) from None
    import base64

    print(f"key id: {keyId(key)}", file=out)
    print(f"raw (base64): {base64.b64encode(publicKeyBytes(key)).decode()}", file=out)
    print(publicKeyPEM(key), end="", file=out)
    return 0


async def run(reactor, args, out=None):
    """Run `mmoshard release <action>`; @return: the exit status."""
    out = out or sys.stdout
    config, cfg = _load(args)
    if args.action == "publish":
        return await _publish(reactor, args, config, cfg, out)
    if args.action == "rollback":
        return await _rollback(reactor, args, config, out)
    if args.action == "status":
        return await _status(reactor, args, config, out)
    return _pubkey(config, cfg, out)
