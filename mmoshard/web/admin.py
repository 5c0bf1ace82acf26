"""The admin site: /healthz, /readyz, /directory, /players/{id}, Prometheus /metrics, the shard's routes and the operator console, on loopback or behind an operator login."""

import os

import attrs
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mmoshard import __version__
from mmoshard.endpoints import isLoopbackEndpoint
from mmoshard.web.errors import ErrorCodes
from mmoshard.web.guard import AdminGuard
from mmoshard.web.operators import OperatorAuth
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.schema import Prop
from mmoshard.web.shard import SHARD_ERRORS, ShardAdminAPI
from mmoshard.web.site import AdminSite
from mmoshard.web.static import STATIC_ROOT, StaticFolder

CORE_ADMIN_ERRORS = ErrorCodes({
    "player.not_found": (404, "no live node knows where the character is (offline, or unknown)"),
})

# Not JSON: the router sends the body as it is, with this type.
_METRICS_TYPE = {"Content-Type": CONTENT_TYPE_LATEST.encode()}


@attrs.define(eq=False)
class CoreAdminAPI:
    """
    The node's own admin routes: liveness, readiness, metrics and the directory.
    Readiness is 200 only when started and both stores answer, else 503
    naming what is down.
    """

    node: object
    sql: object  # ISQLStore
    volatile: object  # IVolatileStore
    directory: object  # IDirectory
    locator: object = None  # ILocator
    timeout: float = 2.0  # seconds a store's ping may take

    @route("GET", "/healthz", "Liveness: the process runs; says who it is", auth=False)
    async def healthz(self, call):
        node = self.node
        return 200, {
            "status": "ok",
            "node_id": node.nodeId,
            "roles": node.roleNames,
            "uptime_s": round(node.reactor.seconds() - node.startedAt, 3),
            "version": __version__,
        }

    async def _probe(self, store):
        d = store.ping()
        d.addTimeout(self.timeout, self.node.reactor)
        try:
            await d
        except Exception as e:
            return f"down: {type(e).__name__}: {e}"
        return "ok"

    @route("GET", "/readyz", "Readiness: started, both stores answer, the roles' checks pass",
           auth=False, responses={503: "not ready: `down` names what is not"})
    async def readyz(self, call):
        node = self.node
        checks = {
            "sql": await self._probe(self.sql),
            "volatile": await self._probe(self.volatile),
            "started": "ok" if node.ready else "not yet",
        }
        for name, check in node.readinessChecks.items():
            checks[name] = check()
        down = sorted(k for k, v in checks.items() if v != "ok")
        status = 200 if not down else 503
        return status, {
            "status": "ready" if not down else "unavailable",
            "node_id": node.nodeId,
            "down": down,
            "checks": checks,
        }

    @route("GET", "/metrics", "Prometheus text exposition of the node's registry",
           auth=False)
    def metrics(self, call):
        return 200, generate_latest(self.node.metrics), _METRICS_TYPE

    @route("GET", "/directory", "Every live process of the deployment, its roles, endpoints "
           "and load", auth=False)
    async def listing(self, call):
        entries = await self.directory.list()
        return 200, {"processes": [e.toJSON() for e in entries]}

    @route("GET", "/players/{character_id}", "Where a character is: its sessions per kind of "
           "role (node, session id) and the node, zone and instance it plays in",
           auth=False, errors=("player.not_found",),
           response={"character_id": Prop("integer"), "node": Prop("string", nullable=True),
                     "zone": Prop("string", nullable=True),
                     "instance_id": Prop("integer", nullable=True),
                     "sessions": Prop("array", description="[{kind, node, session_id}], one "
                                      "per kind of role (chat, world, matchmaking)")})
    async def player(self, call):
        cid = call.params["character_id"]
        location = await self.locator.where(cid) if self.locator is not None else None
        if location is None:
            raise CORE_ADMIN_ERRORS.error("player.not_found", f"character {cid} is nowhere")
        return 200, location.toJSON()


def makeAdminSite(node, sql, volatile, directory, gate, verifier, spaces, locator=None):
    """
    @return: the L{AdminSite} of C{node}, with the core routes of its parts
        and the shard's (the operator console's) mounted, and the console's
        static files.  Off loopback it needs an operator login
        (docs/operations.md, "Admin site").
    """
    loopback = isLoopbackEndpoint(node.config.listen.admin)
    if loopback:
        site = AdminSite()
    else:
        site = AdminSite(AdminGuard(names=None), OperatorAuth(verifier))
    api = CoreAdminAPI(node, sql, volatile, directory, locator, node.config.volatile.timeout)
    mountRouter(site, Router(api, CORE_ADMIN_ERRORS))
    shard = ShardAdminAPI(node, sql, volatile, directory, gate, verifier, spaces,
                          loginRequired=not loopback)
    mountRouter(site, Router(shard, SHARD_ERRORS))
    mountAdminFiles(site)
    return site


def mountAdminFiles(site, root=STATIC_ROOT):
    """Serve the operator console at C{/console/} and the client library at C{/lib/} on the admin C{site}."""
    site.putChild(b"console", StaticFolder(os.path.join(root, "console")))
    site.putChild(b"lib", StaticFolder(os.path.join(root, "lib")))


__all__ = ["makeAdminSite", "mountAdminFiles", "CoreAdminAPI"]
