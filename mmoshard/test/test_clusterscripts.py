"""The Redis Cluster audit of every Lua script: which run on a cluster, keys as their callers build them."""

import importlib
import pathlib

from twisted.trial.unittest import TestCase

from mmoshard import locator, revocations
from mmoshard.auth import logins
from mmoshard.chat import scripts as chatScripts
from mmoshard.chat.store import ChatStore
from mmoshard.matchmaking.store import TicketStore, scriptsFor
from mmoshard.store.common import Script
from mmoshard.store.test.fixtures import ClusterFixture
from mmoshard.store.volatile import CrossSlot
from mmoshard.wire import manager
from mmoshard.world import lease
from mmoshard.world.instances import copies, host

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Modules defining a Script (the package's sources are checked for others).
MODULES = [
    "mmoshard.auth.logins", "mmoshard.chat.store", "mmoshard.locator",
    "mmoshard.matchmaking.store", "mmoshard.revocations", "mmoshard.store.redis",
    "mmoshard.tokens", "mmoshard.wire.manager", "mmoshard.world.instances.copies",
    "mmoshard.world.instances.host", "mmoshard.world.instances.service", "mmoshard.world.lease",
    # These name Script without defining one (the interface, the memory store).
    "mmoshard.interfaces.stores", "mmoshard.store.memory",
]

_chat = ChatStore(None)
_mm = TicketStore(None, None)

# Keys each script is called with, for two characters, sessions, channels...
# as its callers build them.
SAFE = {
    "incr-ttl": (["n"], [1, 60000]),
    "locator_put": ([locator.indexKey(1), locator.entryKey(1, "n1")], ["n1", 60000, "place", "x"]),
    "locator_where": ([locator.indexKey(1)], []),
    "auth_login_create": ([logins.loginKey("s1")], [1, "u", 0, 1, 100, 60000]),
    "instance_admit": ([host.ticketKey("t1")], ["1"]),
    "instance_map_copy": ([copies.partyKey("p1", "crypt")], ["", "7", 60000]),
    "world_lease_acquire": ([lease.leaseKey(1)], ["n1", 60000, ""]),
    "world_lease_handoff": ([lease.leaseKey(1)], ["n1", "t", 60000]),
    "tokens_revoke": ([revocations.REVOKED_SIDS, revocations.REVOKED_ACCOUNTS,
                revocations.REVOCATION_SEQ, revocations.REVOCATION_CHANNEL],
               ["sid", "s1", 60000, 100]),
    "tokens_snapshot": ([revocations.REVOCATION_SEQ, revocations.REVOKED_SIDS,
                             revocations.REVOKED_ACCOUNTS], [0, 100]),
    "session_claim_owner": ([manager.ownersKey(1)], ["s1@n1", "s1", "world", 60000]),
    "chat_chan_join": (list(_chat.channelKeys("trade")), ["1", "n1", "0"]),
    "chat_chan_leave": (list(_chat.channelKeys("trade")), ["1"]),
    "chat_chan_purge": (list(_chat.channelKeys("trade")), ["n1"]),
    **{name: ([_mm.namespace], []) for name in scriptsFor()},
}

# Batches of several characters, logins, sessions or instances in one call:
# refused on a cluster until their callers split them per slot.
CROSS_SLOT = {
    "auth_login_rotate": [logins.loginKey("s1"), logins.loginKey("s2")],
    "auth_login_end": [logins.loginKey("s1"), logins.loginKey("s2")],
    "locator_refresh": [locator.indexKey(1), locator.entryKey(1, "n"),
                        locator.indexKey(2), locator.entryKey(2, "n")],
    "locator_withdraw": [locator.indexKey(1), locator.entryKey(1, "n"),
                         locator.indexKey(2), locator.entryKey(2, "n")],
    "world_lease_refresh": [lease.leaseKey(1), lease.leaseKey(2)],
    "world_lease_release": [lease.leaseKey(1), lease.leaseKey(2)],
    "chat_cas": [_chat.partyKey("p1"), _chat.partyOfKey(1), _chat.partyOfKey(2)],
    "chat_expire": [_chat.presenceKey(1), _chat.presenceKey(2)],
    "chat_presence": [_chat.presenceKey(1), _chat.presenceKey(2)],
    "chat_presence_set": [_chat.presenceKey(1), _chat.nameKey("Alice")],
    "chat_presence_drop": [_chat.presenceKey(1), _chat.nameKey("Alice")],
    "chat_history": [_chat.historyKey("trade"), _chat.historyKey("party:p1")],
}

# One key given, other keys (of other slots) named inside the script.
DERIVES = {"chat_party_route"}


def everyScript():
    """@return: {name: Script} of every Script the code base defines."""
    found = {}
    for name in MODULES:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Script):
                found[value.name] = value
    found.update({name: _chat._script(name) for name in chatScripts.SCRIPTS})
    found.update(scriptsFor())
    return found


class AuditTests(ClusterFixture, TestCase):
    """Every Lua script run on a real three-node Redis Cluster."""

    def test_everyScriptListed(self):
        """
        Every Script of the code base is classified here (cluster-safe, refused across slots, or
        naming keys inside), and no module outside MODULES defines one.
        """
        sources = {
            ".".join(p.relative_to(ROOT.parent).with_suffix("").parts)
            for p in ROOT.rglob("*.py")
            if "test" not in p.relative_to(ROOT).parts[:-1] and "Script(" in p.read_text()
        }
        self.assertEqual(sources - set(MODULES), set())
        names = set(everyScript())
        listed = set(SAFE) | set(CROSS_SLOT) | DERIVES
        self.assertEqual(names - listed, set(), "scripts not classified for Redis Cluster")
        self.assertEqual(listed - names, set(), "classified scripts that do not exist")
        self.assertEqual(len(listed), len(SAFE) + len(CROSS_SLOT) + len(DERIVES))

    async def test_safeScriptsRun(self):
        """The cluster-safe scripts run on the cluster with their callers' keys: no cross-slot or redirection error."""
        scripts = everyScript()
        for name, (keys, args) in SAFE.items():
            try:
                await self.store.evalScript(scripts[name], keys, args)
            except CrossSlot:
                self.fail(f"{name}: keys {keys} span slots")
            except Exception as e:
                # Sample arguments may not suit the script; the cluster must not be why.
                for word in ("CROSSSLOT", "MOVED", "ASK", "non local", "no such key"):
                    self.assertNotIn(word, str(e), name)

    async def test_crossSlotScriptsRefused(self):
        """The scripts still batching several slots fail with CrossSlot, before reaching Redis."""
        scripts = everyScript()
        for name, keys in CROSS_SLOT.items():
            with self.assertRaises(CrossSlot, msg=name):
                await self.store.evalScript(scripts[name], keys, ["x", 1, 1])
