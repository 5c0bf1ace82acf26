"""Admin endpoints of the world role: recent tick durations and an on-demand tick profile, for benchmarks."""

import cProfile
import io
import pstats

from twisted.internet.task import deferLater
from twisted.web.resource import Resource

from mmoshard.web.json import HTTPError, JSONResource


def _seconds(request, default, limit):
    raw = request.args.get(b"seconds", [b"%g" % default])[0]
    try:
        value = float(raw)
    except ValueError:
        raise HTTPError(400, "request.bad_parameter", "seconds must be a number")
    if not 0 < value <= limit:
        raise HTTPError(400, "request.bad_parameter", f"seconds must be in (0, {limit}]")
    return value


class Ticks(JSONResource):
    """GET /world/ticks?seconds=30: each zone's tick durations (ms) over the last seconds."""

    handlers = {b"GET": "get"}

    def __init__(self, service):
        super().__init__()
        self.service = service

    async def get(self, request):
        seconds = _seconds(request, 30.0, 3600.0)
        since = self.service.clock.seconds() - seconds
        return 200, {
            zid: [round(d * 1000.0, 3) for t, d in ring if t >= since]
            for zid, ring in self.service.tickLog.items()
        }


class Profile(JSONResource):
    """GET /world/profile?seconds=10: cProfile of every zone tick for that long, top functions."""

    handlers = {b"GET": "get"}

    def __init__(self, service):
        super().__init__()
        self.service = service
        self.busy = False

    async def get(self, request):
        seconds = _seconds(request, 10.0, 120.0)
        if self.busy:
            raise HTTPError(409, "world.profile_busy", "a profile is already running")
        self.busy = True
        profiler = cProfile.Profile()
        zones = self.service.zones.values()
        originals = {z: z.tick for z in zones}

        def wrap(zone, tick):
            def profiled(index, dt):
                profiler.runcall(tick, index, dt)
            return profiled

        loops = self.service.loops
        try:
            for zid, loop in loops.items():
                loop.func = wrap(self.service.zones[zid], originals[self.service.zones[zid]])
            await deferLater(self.service.clock, seconds, lambda: None)
        finally:
            for zid, loop in loops.items():
                loop.func = originals[self.service.zones[zid]]
            self.busy = False
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        return 200, {"seconds": seconds, "profile": out.getvalue()}


def makeWorldAdmin(service):
    root = Resource()
    root.putChild(b"ticks", Ticks(service))
    root.putChild(b"profile", Profile(service))
    return root

