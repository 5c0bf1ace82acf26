"""The admin site on loopback: /healthz, /readyz and Prometheus /metrics."""

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.resource import Resource

from mmoshard import __version__
from mmoshard.web.json import JSONResource, JSONRoot


class Healthz(JSONResource):
    """Liveness: the process runs; says who it is."""

    handlers = {b"GET": "get"}

    def __init__(self, node):
        super().__init__()
        self.node = node

    async def get(self, request):
        node = self.node
        return 200, {
            "status": "ok",
            "node_id": node.nodeId,
            "roles": node.roleNames,
            "uptime_s": round(node.reactor.seconds() - node.startedAt, 3),
            "version": __version__,
        }


class Readyz(JSONResource):
    """Readiness: 200 only when started and both stores answer, else 503 naming what is down."""

    handlers = {b"GET": "get"}

    def __init__(self, node, sql, volatile, timeout=2.0):
        super().__init__()
        self.node = node
        self.sql = sql
        self.volatile = volatile
        self.timeout = timeout

    async def _probe(self, store):
        d = store.ping()
        d.addTimeout(self.timeout, self.node.reactor)
        try:
            await d
        except Exception as e:
            return f"down: {type(e).__name__}: {e}"
        return "ok"

    async def get(self, request):
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


class DirectoryListing(JSONResource):
    """Every live process of the deployment, its roles, endpoints and load."""

    handlers = {b"GET": "get"}

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    async def get(self, request):
        entries = await self.directory.list()
        return 200, {"processes": [e.toJSON() for e in entries]}


class Metrics(Resource):
    """Prometheus text exposition of the node's registry."""

    isLeaf = True

    def __init__(self, node):
        super().__init__()
        self.node = node

    def render_GET(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.node.metrics)


def makeAdminRoot(node, sql, volatile, directory):
    """@return: the admin site's root resource for C{node} and its core parts."""
    root = JSONRoot()
    root.putChild(b"healthz", Healthz(node))
    root.putChild(b"readyz", Readyz(node, sql, volatile, node.config.volatile.timeout))
    root.putChild(b"metrics", Metrics(node))
    root.putChild(b"directory", DirectoryListing(directory))
    return root


__all__ = ["makeAdminRoot", "Healthz", "Readyz", "Metrics"]
