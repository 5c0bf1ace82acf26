"""Admin endpoints of the world role: this node's spaces for the operator console, recent tick durations and an on-demand tick profile."""

import cProfile
import io
import pstats
import time

from twisted.internet.task import deferLater

from mmoshard.web.errors import ErrorCodes
from mmoshard.web.routes import Router, route
from mmoshard.web.schema import Prop

WORLD_ADMIN_ERRORS = ErrorCodes({
    "request.bad_parameter": (400, "a query parameter is out of range"),
    "world.profile_busy": (409, "a profile is already running"),
    "world.no_such_zone": (404, "no such zone on this node"),
})


def _seconds(call, default, limit):
    raw = call.arg(b"seconds")
    if raw is None:
        raw = b"%g" % default
    try:
        value = float(raw)
    except ValueError:
        raise WORLD_ADMIN_ERRORS.error("request.bad_parameter", "seconds must be a number")
    if not 0 < value <= limit:
        raise WORLD_ADMIN_ERRORS.error("request.bad_parameter",
                                       f"seconds must be in (0, {limit}]")
    return value


class WorldAdminAPI:
    """The world role's admin routes: its spaces (the console), tick durations and a tick profile (benchmarks)."""

    def __init__(self, service):
        self.service = service
        self.busy = False

    @route("GET", "/world/spaces", "This node's spaces (players, NPCs, tick times) and, with "
           "zone, that space's map and entities (the console's live map asks every world node "
           "through GET /shard/spaces)", auth=False,
           query={"zone": Prop("string", required=False, description="a zone id hosted here")},
           errors=("world.no_such_zone",))
    async def spaces(self, call):
        raw = call.arg(b"zone")
        zone = raw.decode() if raw else None
        answer = self.service.spaceViews.answer("local", zone)
        if zone is not None and answer.detail is None:
            raise WORLD_ADMIN_ERRORS.error("world.no_such_zone", f"zone {zone!r} is not hosted here")
        return 200, answer.toJSON()

    @route("GET", "/world/ticks", "Each zone's tick durations (ms) over the last seconds",
           auth=False, query={"seconds": Prop("number", required=False, default=30)},
           errors=("request.bad_parameter",))
    async def ticks(self, call):
        seconds = _seconds(call, 30.0, 3600.0)
        since = self.service.clock.seconds() - seconds
        return 200, {
            zid: [round(d * 1000.0, 3) for t, d in ring if t >= since]
            for zid, ring in self.service.tickLog.items()
        }

    # A POST: it costs the node seconds of profiling, so a foreign page's
    # <img src> (a GET the admin site's guard lets through) must not start it.
    @route("POST", "/world/profile", "cProfile of every zone tick for that long, top functions",
           auth=False, query={"seconds": Prop("number", required=False, default=10)},
           errors=("request.bad_parameter", "world.profile_busy"))
    async def profile(self, call):
        seconds = _seconds(call, 10.0, 120.0)
        if self.busy:
            raise WORLD_ADMIN_ERRORS.error("world.profile_busy")
        self.busy = True
        # CPU time of the reactor's thread, not wall time: on a machine other
        # processes keep busy, a function the tick was descheduled in does
        # not look slow.
        profiler = cProfile.Profile(time.thread_time)
        # The loops of now: zones added meanwhile (instances) are not
        # profiled, and those removed meanwhile are just given back.
        loops = [(loop, loop.func) for loop in self.service.loops.values()]

        def wrap(tick):
            def profiled(index, dt):
                profiler.runcall(tick, index, dt)
            return profiled

        try:
            for loop, tick in loops:
                loop.func = wrap(tick)
            await deferLater(self.service.clock, seconds, lambda: None)
        finally:
            for loop, tick in loops:
                loop.func = tick
            self.busy = False
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        return 200, {"seconds": seconds, "profile": out.getvalue()}


def makeWorldAdmin(service):
    """@return: the resource serving C{/world/...} on the admin site for C{service}."""
    return Router(WorldAdminAPI(service), WORLD_ADMIN_ERRORS)

