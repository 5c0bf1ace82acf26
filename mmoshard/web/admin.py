"""The admin site on loopback: /healthz, /readyz, /directory, Prometheus /metrics and the site itself."""

import attrs
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mmoshard import __version__
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.site import AdminSite

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


def makeAdminSite(node, sql, volatile, directory):
    """@return: the L{AdminSite} of C{node}, with the core routes of its parts mounted."""
    site = AdminSite()
    api = CoreAdminAPI(node, sql, volatile, directory, node.config.volatile.timeout)
    mountRouter(site, Router(api))
    return site


__all__ = ["makeAdminSite", "CoreAdminAPI"]
