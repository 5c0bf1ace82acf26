"""The matchmaking role's admin route: GET /matchmaking/queues, each queue's lease holder, waiting tickets and ready checks."""

from mmoshard.matchmaking.views import queueView
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.schema import Prop

MM_ADMIN_ERRORS = ErrorCodes({})


class MatchmakingAdminAPI:
    """Read-only views of the queues for operators (the admin site, loopback)."""

    def __init__(self, service):
        self.service = service

    @route("GET", "/matchmaking/queues",
           "Every queue: its definition, lease holder, waiting tickets by role, oldest wait, "
           "ready checks in flight and expected wait", auth=False,
           response={"node_id": Prop("string"), "queues": Prop("array")})
    async def queues(self, call):
        service = self.service
        store = service.store
        listing = []
        for _, spec in sorted(service.queues.items()):
            holder = await store.leaseHolder(spec.name)
            stats = await store.stats(spec.name)
            view = queueView(spec)
            view.update(
                lease_holder=holder,
                waiting=stats.tickets,
                waiting_players=stats.members,
                waiting_by_role=dict(stats.roles),
                oldest_wait_s=round(stats.oldest_wait, 3),
                proposals=stats.proposals,
                eta_s=await service.loop.eta(spec.name),
            )
            listing.append(view)
        return 200, {"node_id": service.nodeId, "queues": listing}


def mountAdmin(admin, service):
    """Mount the matchmaking admin routes on the admin site C{admin}."""
    mountRouter(admin, Router(MatchmakingAdminAPI(service), MM_ADMIN_ERRORS))
