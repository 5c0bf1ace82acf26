"""The auth role plugin: accounts, logins, tokens and characters over REST."""

from mmoshard.auth.config import AUTH_FIELDS, AuthConfig, validate
from mmoshard.interfaces import (
    IAdminSite, IClientGate, IDirectory, IOperatorLogin, ISQLStore, ITokenVerifier,
    IVolatileStore, IWebSite,
)
from mmoshard.role import Role


def makeService(ctx):
    from mmoshard.auth.gamedata import loadGameData
    from mmoshard.auth.service import AuthService

    service = AuthService(
        ctx.config, ctx.reactor, ctx.nodeId, ctx.metrics,
        gameData=loadGameData(ctx.config.classes_file),
        tokenKey=ctx.tokenKey,
        **ctx.providers(
            sql=ISQLStore, volatile=IVolatileStore, verifier=ITokenVerifier,
            directory=IDirectory, site=IWebSite, admin=IAdminSite, gate=IClientGate,
        ),
    )
    ctx.provide(IOperatorLogin, service.operatorLogins)
    return service


auth = Role(
    name="auth",
    factory=makeService,
    transports=frozenset({"http"}),
    provides=(IOperatorLogin,),
    requires=(ISQLStore, IVolatileStore, ITokenVerifier, IDirectory),
    uses=(IWebSite, IAdminSite, IClientGate),
    fields=AUTH_FIELDS,
    configClass=AuthConfig,
    validate=validate,
)
