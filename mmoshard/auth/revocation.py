"""Ending logins everywhere: revocation marks for token checks, and an announcement for live sessions."""

import json

from twisted.logger import Logger

from mmoshard.store.errors import VolatileUnavailable
from mmoshard.tokens import revokeAccount, revokeLogin

# Published on every revocation: {"account_id", "sids" (null: every login of
# the account issued so far), "reason", "at"}; a session layer subscribes to
# end live sessions at once rather than at their next token check.
REVOKED_CHANNEL = "auth:revoked"



async def _announce(volatile, accountId, sids, reason, now):
    message = json.dumps({"account_id": accountId, "sids": sids, "reason": reason,
                          "at": now})
    try:
        await volatile.publish(REVOKED_CHANNEL, message.encode())
    except VolatileUnavailable as e:
        # The revocation marks are stored; only the early notice is lost.
        Logger(namespace=__name__).warn(
            "revocation of account {account_id} not announced: {why}",
            account_id=accountId, why=e)


async def endLogins(volatile, accountId, sids, ttl, reason, now):
    """Revoke every token of the logins C{sids} of C{accountId}."""
    for sid in sids:
        await revokeLogin(volatile, sid, ttl)
    if sids:
        await _announce(volatile, accountId, list(sids), reason, now)


async def endAccount(volatile, accountId, ttl, reason, now):
    """Revoke every token of C{accountId} issued until C{now}."""
    await revokeAccount(volatile, accountId, now, ttl)
    await _announce(volatile, accountId, None, reason, now)
