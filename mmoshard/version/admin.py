"""The version role's admin endpoints (loopback): publish, rollback and status for `mmoshard release` on the embedded default."""

from mmoshard.version.releases import ReleaseDataError
from mmoshard.version.signing import SigningKeyError, keyId
from mmoshard.version.store import NoEarlierRevision, NothingPublished
from mmoshard.version.web import VERSION_ERRORS
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.schema import Prop


def adminRoute(method, path, summary, **options):
    """L{route} on the admin site: no token (the site is loopback only and guards its own requests)."""
    return route(method, path, summary, auth=False, **options)


def optional(type, description):
    """@return: a body field that may be absent or null."""
    return Prop(type, required=False, nullable=True, description=description)


class VersionAdminAPI:
    """The admin routes of the version role C{role} (no token: the admin site is loopback only)."""

    def __init__(self, role):
        self.role = role

    @adminRoute("GET", "/version/status", "The release in force and the kept revisions",
                errors=("version.no_release",))
    async def status(self, call):
        try:
            release = await self.role.store.load()
        except NothingPublished:
            raise VERSION_ERRORS.error("version.no_release", "nothing published yet")
        history = await self.role.store.history()
        return 200, {
            "release": release.toJSON(),
            "history": [
                {"revision": h.revision, "published_at": h.published_at, "current": h.current}
                for h in history
            ],
        }

    @adminRoute("POST", "/version/publish", "Check, sign and publish release data",
                body={"dir": optional(
                    "string", "the release directory; absent: [version] releases_dir")},
                errors=("version.invalid_release",))
    async def publish(self, call):
        try:
            release, key = await self.role.publish(call.body["dir"])
        except (ReleaseDataError, SigningKeyError) as e:
            raise VERSION_ERRORS.error("version.invalid_release", str(e))
        return 200, {"release": release.toJSON(), "key_id": keyId(key)}

    @adminRoute("POST", "/version/rollback", "Put an earlier revision back in force",
                body={"to": optional("integer", "the revision; absent: the one before")},
                errors=("version.no_earlier_revision",))
    async def rollback(self, call):
        try:
            release = await self.role.store.rollback(call.body["to"])
        except NoEarlierRevision as e:
            raise VERSION_ERRORS.error("version.no_earlier_revision", str(e))
        await self.role.refresh()
        return 200, {"release": release.toJSON()}


def mountAdmin(site, role):
    """Mount C{/version/status}, C{/version/publish} and C{/version/rollback} on the admin C{site}."""
    mountRouter(site, Router(VersionAdminAPI(role), VERSION_ERRORS))
