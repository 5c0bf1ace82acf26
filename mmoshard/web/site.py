"""The roots of the public and admin sites that roles mount their resources into."""

from zope.interface import implementer

from mmoshard.interfaces import IAdminSite, IWebSite
from mmoshard.web.json import JSONRoot, OpenAPIDocuments


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
            self.root.putChild(b"openapi.json", self._openapi)
        self._openapi.add(source)
