"""The version role's admin endpoints (loopback): publish, rollback and status for `mmoshard release` on the embedded default."""

from mmoshard.version.releases import ReleaseDataError
from mmoshard.version.signing import SigningKeyError, keyId
from mmoshard.version.store import NoEarlierRevision, NothingPublished
from mmoshard.web.json import HTTPError, JSONResource, JSONRoot, readJSON


def _needJSON(request):
    # A JSON content type makes a browser ask before a cross-site POST, so a
    # web page cannot drive these endpoints through a local browser.
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip()
    if kind != b"application/json":
        raise HTTPError(415, "request.unsupported_media_type", "send application/json")
    return readJSON(request)


class Status(JSONResource):
    """C{GET /version/status}: the release in force and the kept revisions."""

    handlers = {b"GET": "get"}

    def __init__(self, role):
        super().__init__()
        self.role = role

    async def get(self, request):
        try:
            release = await self.role.store.load()
        except NothingPublished:
            return 404, {"error": {"code": "version.no_release", "message": "nothing published yet"}}
        history = await self.role.store.history()
        return 200, {
            "release": release.toJSON(),
            "history": [
                {"revision": h.revision, "published_at": h.published_at, "current": h.current}
                for h in history
            ],
        }


class Publish(JSONResource):
    """C{POST /version/publish} C{{"dir"?}}: check, sign and publish release data."""

    handlers = {b"POST": "post"}

    def __init__(self, role):
        super().__init__()
        self.role = role

    async def post(self, request):
        body = _needJSON(request)
        directory = body.get("dir")
        if directory is not None and not isinstance(directory, str):
            raise HTTPError(400, "request.invalid", "dir must be a string")
        try:
            release, key = await self.role.publish(directory)
        except (ReleaseDataError, SigningKeyError) as e:
            raise HTTPError(400, "version.invalid_release", str(e))
        return 200, {"release": release.toJSON(), "key_id": keyId(key)}


class Rollback(JSONResource):
    """C{POST /version/rollback} C{{"to"?}}: put an earlier revision back in force."""

    handlers = {b"POST": "post"}

    def __init__(self, role):
        super().__init__()
        self.role = role

    async def post(self, request):
        body = _needJSON(request)
        to = body.get("to")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool)):
            raise HTTPError(400, "request.invalid", "to must be a revision number")
        try:
            release = await self.role.store.rollback(to)
        except NoEarlierRevision as e:
            raise HTTPError(409, "version.no_earlier_revision", str(e))
        await self.role.refresh()
        return 200, {"release": release.toJSON()}


def mountAdmin(site, role):
    """Mount C{/version/status}, C{/version/publish} and C{/version/rollback} on the admin C{site}."""
    folder = JSONRoot()
    folder.putChild(b"status", Status(role))
    folder.putChild(b"publish", Publish(role))
    folder.putChild(b"rollback", Rollback(role))
    site.putChild(b"version", folder)
