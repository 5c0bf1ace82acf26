"""A session taken over from another node: the account's owners entry follows it, the old node is told, the roles take it in before the client hears it resumed."""

from twisted.internet.defer import DeferredList
from twisted.logger import Logger

from mmoshard.store.errors import StoreError
from mmoshard.wire.codec import encode
from mmoshard.wire.owners import kickChannel, ownerField, ownersKey

log = Logger()


async def moveOwner(manager, session, fromNode):
    """
    The account's owners hash names C{manager}'s node for C{session}; the
    node it left is told to let it go silently (reason C{moved}).
    """
    volatile = manager.volatile
    if volatile is None:
        return
    try:
        if manager.config.one_session_per_account:
            await volatile.hdel(ownersKey(session.accountId), ownerField(fromNode, session.sessionId))
            await manager.claimAccount(session.claims, session.sessionId)
        if fromNode != manager.nodeId:
            # (The same node id: this node's previous run, restarted since;
            # its kick channel is this run's now.)
            await volatile.publish(kickChannel(fromNode),
                                   encode([session.accountId, session.sessionId, "moved"]))
    except StoreError as e:
        log.warn("cannot tell node {from_node} that session {session_id} moved: {why}",
                 from_node=fromNode, session_id=session.sessionId, why=e)


async def takeIn(manager, session, fromNode):
    """
    Tell C{manager}'s listeners C{session} moved here and wait until each
    took it in (chat rebuilds its character): a request the client sends
    right after C{resumed} finds its role ready.
    """
    waits = manager._notify([listener.sessionMoved for listener in manager.listeners],
                            session, fromNode)
    if waits:
        await DeferredList(waits)
