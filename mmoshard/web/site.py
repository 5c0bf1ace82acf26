"""The roots of the public and admin sites that roles mount their resources into, and the merged /openapi.json."""

from zope.interface import implementer

from mmoshard import __version__
from mmoshard.interfaces import IAdminSite, IWebSite
from mmoshard.web.errors import ADMIN_SITE, ErrorCodes
from mmoshard.web.guard import AdminGuard, GuardedRoot
from mmoshard.web.json import JSONRoot
from mmoshard.web.operators import openPath
from mmoshard.web.routes import Router, errorSchema, mountRouter, openapiDocument, route


class OpenAPIDocuments:
    """
    C{GET /openapi.json}: the merged OpenAPI documents of every role on the
    site, each added as a callable returning its document; this route's
    own is one of them.
    """

    errors = ErrorCodes({})

    def __init__(self):
        self.router = Router(self, self.errors)
        self.sources = [self.document]

    def add(self, source):
        self.sources.append(source)

    def document(self):
        """@return: the OpenAPI document of this route."""
        return openapiDocument(self.router.routes, "mmoshard", __version__, self.errors)

    @route("GET", "/openapi.json", "This document (every role's endpoints on this site)",
           auth=False)
    async def openapi(self, call):
        merged = {"openapi": "3.0.3", "info": {"title": "mmoshard", "version": __version__},
                  "paths": {}, "components": {}}
        codes = set()
        for source in self.sources:
            doc = source()
            merged["paths"].update(doc["paths"])
            for kind, items in doc.get("components", {}).items():
                merged["components"].setdefault(kind, {}).update(items)
            error = doc.get("components", {}).get("schemas", {}).get("Error")
            if error is not None:
                codes.update(error["properties"]["error"]["properties"]["code"]["enum"])
        if codes:
            # One error shape: its codes are every role's.
            merged["components"]["schemas"]["Error"] = errorSchema(codes)
        return 200, merged


@implementer(IWebSite, IAdminSite)
class SiteRoot:
    """
    Lets roles mount resources on a site without holding the Site, sharing
    folders such as C{/v1} between roles whichever mounts first.
    """

    def __init__(self, root=None):
        self.root = root if root is not None else JSONRoot()
        self._openapi = None

    def putChild(self, path, resource):
        self.root.putChild(path, resource)

    def mount(self, segments, resource):
        *folders, leaf = segments
        parent = self.root
        for name in folders:
            child = parent.children.get(name)
            if child is None:
                child = JSONRoot()
                parent.putChild(name, child)
            parent = child
        parent.putChild(leaf, resource)

    def addOpenAPI(self, source):
        if self._openapi is None:
            self._openapi = OpenAPIDocuments()
            mountRouter(self, self._openapi.router)
        self._openapi.add(source)


class AdminSite(SiteRoot):
    """
    The admin site: every request passes its L{AdminGuard} first, whichever
    role mounted the resource it asks for (docs/operations.md, "Admin
    site"); its own C{GET /openapi.json} documents every L{Router} mounted
    on it, with what the guard may answer, so what the admin site serves is
    listed in one place (for operators, the operator console, and the tests
    that check every admin route).
    """

    title = "mmoshard admin"

    def __init__(self, guard=None, operators=None):
        """
        @param operators: None for an admin site on loopback, or the
            L{mmoshard.web.operators.OperatorAuth} that every request but
            the open ones must pass (an admin site listening elsewhere).
        """
        self.guard = guard if guard is not None else AdminGuard()
        self.operators = operators
        super().__init__(GuardedRoot(self.guard, operators=operators))
        self.routers = []

    def putChild(self, path, resource):
        self._record(resource)
        super().putChild(path, resource)

    def mount(self, segments, resource):
        self._record(resource)
        super().mount(segments, resource)

    def addOpenAPI(self, source):
        first = self._openapi is None
        super().addOpenAPI(source)
        if first:
            # /openapi.json documents itself as the site serves it too.
            docs = self._openapi
            docs.sources[0] = lambda: self.document(docs.router)

    def _record(self, resource):
        # mountRouter mounts one router at each of its prefixes: list it once.
        # The /openapi.json router documents itself.
        if not isinstance(resource, Router) or any(r is resource for r in self.routers):
            return
        if self._openapi is not None and resource is self._openapi.router:
            return
        self.routers.append(resource)
        self.addOpenAPI(lambda: self.document(resource))

    def document(self, router):
        """@return: the OpenAPI document of C{router}'s routes as the admin site serves them."""
        errors = ErrorCodes({**router.errors.codes, **ADMIN_SITE})
        return openapiDocument(router.routes, self.title, __version__, errors, self.codesFor)

    def codesFor(self, method, path):
        """@return: the codes the site answers a request for route C{method} C{path} with before the route runs."""
        codes = list(self.guard.codesFor(method))
        if self.operators is not None and not openPath(path):
            codes += ["auth.invalid_token", "auth.operator_required", "service.unavailable"]
        return codes
