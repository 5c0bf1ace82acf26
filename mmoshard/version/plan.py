"""The version check's decisions: staged rollout, the cheapest patch plan and the outcome for one client."""

import hashlib
import heapq

import attrs

OK = "ok"
UPDATE_AVAILABLE = "update_available"
UPDATE_REQUIRED = "update_required"
MAINTENANCE = "maintenance"

ROLLOUT_BUCKETS = 10000


def rolloutBucket(salt, accountId):
    """
    @return: the account's bucket in [0, 10000) for C{salt}: uniform, stable
        for the same salt and account, independent of the percentage.
    """
    digest = hashlib.sha256(f"{salt}:{accountId}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % ROLLOUT_BUCKETS


def inRollout(salt, accountId, percent):
    """
    @return: True when the account is among the C{percent} offered a build.
        Raising C{percent} only adds accounts: an account is in for every
        percentage above its bucket.
    """
    return rolloutBucket(salt, accountId) < percent * (ROLLOUT_BUCKETS // 100)


def rolloutSalt(platform, channel, build):
    """The salt choosing a build's cohort: each new build draws a fresh one."""
    return f"{platform}/{channel}/{build.text}"


@attrs.frozen
class Plan:
    """
    How to get from one build to another: a chain of deltas (C{kind="delta"},
    C{steps} being L{mmoshard.version.releases.Patch}es) or the full build
    (C{kind="full"}, no steps).  C{size} is the total download in bytes.
    """

    kind: str
    target: object  # Build
    size: int
    steps: tuple = ()

    def toJSON(self):
        return {
            "kind": self.kind,
            "target": self.target.text,
            "size": self.size,
            "steps": [s.toJSON() for s in self.steps],
        }


def cheapestChain(patches, source, target):
    """
    The chain of C{patches} from C{source} to C{target} with the smallest
    total size (Dijkstra; ties go to fewer steps).

    @return: a tuple of patches, or None when no chain exists.
    """
    edges = {}
    for p in patches:
        edges.setdefault(p.source, []).append(p)
    # (total size, steps, tie-breaker, build, chain)
    queue = [(0, 0, 0, source, ())]
    best = {source: (0, 0)}
    counter = 1
    while queue:
        size, steps, _, build, chain = heapq.heappop(queue)
        if build == target:
            return chain
        if best.get(build, (size, steps)) < (size, steps):
            continue
        for p in edges.get(build, ()):
            cost = (size + p.size, steps + 1)
            if cost < best.get(p.target, (float("inf"), 0)):
                best[p.target] = cost
                heapq.heappush(queue, (cost[0], cost[1], counter, p.target, chain + (p,)))
                counter += 1
    return None


def choosePlan(platform, source, target):
    """
    @param platform: a L{mmoshard.version.releases.PlatformRelease}.
    @param source: the client's L{Build}; may be unknown to the release data.
    @return: the L{Plan} from C{source} to C{target}: the cheapest delta
        chain, or the full build when no chain exists or it is strictly
        cheaper.
    """
    full = platform.builds[target].size
    chain = cheapestChain(platform.patches, source, target)
    if chain is None:
        return Plan("full", target, full)
    size = sum(p.size for p in chain)
    if full < size:
        return Plan("full", target, full)
    return Plan("delta", target, size, chain)


@attrs.frozen
class Decision:
    """The answer to one client's check, before it is written as JSON."""

    status: str
    channel: object  # Channel
    target: object  # Build offered to this account
    plan: Plan | None = None
    maintenance: object = None  # Maintenance active or next, or None


def offeredBuild(platform, channel, accountId):
    """
    @return: the build offered to C{accountId}: C{latest} when the build is
        forced or the account is in the rollout, else C{previous}.
    """
    if channel.forced or channel.rollout >= 100 or channel.previous is None:
        return channel.latest
    salt = rolloutSalt(platform.name, channel.name, channel.latest)
    if inRollout(salt, accountId, channel.rollout):
        return channel.latest
    if channel.previous < channel.minimum:
        return channel.latest
    return channel.previous


def decide(platform, channel, build, accountId, planFor=choosePlan):
    """
    @param platform: the client's L{PlatformRelease}.
    @param channel: the client's L{Channel} of it.
    @param build: the client's L{Build}.
    @param planFor: C{planFor(platform, source, target)}, e.g. a cache of
        L{choosePlan}.
    @return: a L{Decision} (maintenance is decided by the caller).
    """
    target = offeredBuild(platform, channel, accountId)
    if build < channel.minimum:
        status = UPDATE_REQUIRED
    elif build < target:
        status = UPDATE_AVAILABLE
    else:
        return Decision(OK, channel, target)
    return Decision(status, channel, target, planFor(platform, build, target))
