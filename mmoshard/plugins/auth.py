"""The auth role plugin: accounts, logins, tokens and characters over REST."""

from mmoshard.auth.config import AUTH_FIELDS, AuthConfig, validate
from mmoshard.interfaces import IDirectory, ISQLStore, ITokenVerifier, IVolatileStore
from mmoshard.role import Role


def makeService(node):
    from mmoshard.auth.service import AuthService

    return AuthService(node)


auth = Role(
    name="auth",
    factory=makeService,
    transports=frozenset({"http"}),
    provides=(),
    requires=(ISQLStore, IVolatileStore, ITokenVerifier, IDirectory),
    fields=AUTH_FIELDS,
    configClass=AuthConfig,
    validate=validate,
)
