"""The version role's admin endpoints (loopback): publish, rollback and status for `mmoshard release` on the embedded default."""

from mmoshard.version.releases import ReleaseDataError
from mmoshard.version.signing import SigningKeyError, keyId
from mmoshard.version.store import NoEarlierRevision, NothingPublished
from mmoshard.version.web import VERSION_ERRORS
from mmoshard.web.routes import Router, mountRouter, route
from mmoshard.web.schema import Prop


class VersionAdminAPI:
    """The admin routes of the version role C{role} (no token: the admin site is loopback only)."""

    def __init__(self, role):
        self.role = role

    @route("GET", "/version/status", "The release in force and the kept revisions",
           auth=False, errors=("version.no_release",))
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

    @route("POST", "/version/publish", "Check, sign and publish release data", auth=False,
           body={"dir": Prop("string", required=False, nullable=True,
                             description="the release directory; absent: [version] releases_dir")},
           errors=("version.invalid_release",))
    async def publish(self, call):
        try:
            release, key = await self.role.publish(call.body["dir"])
        except (ReleaseDataError, SigningKeyError) as e:
            raise VERSION_ERRORS.error("version.invalid_release", str(e))
        return 200, {"release": release.toJSON(), "key_id": keyId(key)}

    @route("POST", "/version/rollback", "Put an earlier revision back in force", auth=False,
           body={"to": Prop("integer", required=False, nullable=True,
                            description="the revision; absent: the one before")},
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
