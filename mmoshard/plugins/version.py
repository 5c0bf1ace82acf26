"""The version role plugin: version check, patch plans, signed manifests, rollout and maintenance."""

from mmoshard.interfaces import IAdminSite, ITokenVerifier, IVolatileStore, IWebSite
from mmoshard.role import Role
from mmoshard.version.service import VERSION_FIELDS, VersionConfig, makeService

version = Role(
    name="version",
    factory=makeService,
    transports=frozenset({"http"}),
    provides=(),
    requires=(ITokenVerifier, IVolatileStore),
    uses=(IWebSite, IAdminSite),
    fields=VERSION_FIELDS,
    configClass=VersionConfig,
)
