"""Ending logins everywhere: revocations every process's token verifier mirrors and acts on."""

from mmoshard.revocations import revokeAccount, revokeLogins


async def endLogins(volatile, accountId, sids, ttl, reason, now):
    """
    Revoke every token of the logins C{sids} of C{accountId} (logout,
    refresh-token reuse, the other logins at a password change).

    One atomic store call records the marks and announces them on the
    C{revocations} channel; every process's L{mmoshard.tokens.TokenVerifier}
    refuses the tokens from then on and its session manager ends the live
    sessions of those logins with C{auth.revoked}.
    """
    if sids:
        await revokeLogins(volatile, list(sids), ttl, now=now, accountId=accountId,
                           reason=reason)


async def endAccount(volatile, accountId, ttl, reason, now):
    """Revoke every token of C{accountId} issued until C{now} (ban), likewise."""
    await revokeAccount(volatile, accountId, now, ttl, reason=reason)
