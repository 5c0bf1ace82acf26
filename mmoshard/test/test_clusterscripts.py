"""The Redis Cluster audit of every Lua script: which run on a cluster, keys as their callers build them."""

import importlib
import pathlib

from twisted.trial.unittest import TestCase

from mmoshard import locator, partystore, revocations
from mmoshard.auth import logins
from mmoshard.chat import scripts as chatScripts
from mmoshard.chat.store import ChatStore
from mmoshard.matchmaking.store import TicketStore, scriptsFor
from mmoshard.store.common import Script
from mmoshard.store.slots import slotBatches
from mmoshard.store.test.fixtures import ClusterFixture
from mmoshard.store.volatile import CrossSlot
from mmoshard.wire import manager, resumestore
from mmoshard.world import lease
from mmoshard.world.instances import copies, host

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Modules defining a Script (the package's sources are checked for others).
MODULES = [
    "mmoshard.auth.logins", "mmoshard.chat.store", "mmoshard.locator",
    "mmoshard.matchmaking.store", "mmoshard.revocations", "mmoshard.store.redis",
    "mmoshard.tokens", "mmoshard.wire.manager", "mmoshard.wire.owners",
    "mmoshard.wire.resumestore", "mmoshard.instancewire", "mmoshard.world.instances.copies",
    "mmoshard.world.instances.host", "mmoshard.world.instances.service", "mmoshard.world.lease",
    "mmoshard.partystore",
    # These name Script without defining one (the interface, the memory store, a caller).
    "mmoshard.interfaces.stores", "mmoshard.store.memory", "mmoshard.instanceclient",
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
    "session_resume_take": ([resumestore.recordKey("s1"), resumestore.bufferKey("s1")],
                            ["d", "n1", "d2", "n2"]),
    "session_resume_release": ([resumestore.recordKey("s1"), resumestore.bufferKey("s1")], ["n1"]),
    "session_claim_owner": ([manager.ownersKey(1)], ["s1@n1", "s1", "world", 60000]),
    "chat_chan_join": (list(_chat.channelKeys("trade")), ["1", "n1", "0"]),
    "chat_chan_leave": (list(_chat.channelKeys("trade")), ["1"]),
    "chat_chan_purge": (list(_chat.channelKeys("trade")), ["n1"]),
    # A party with an invite in its slot (members' pointers: one key per call).
    "chat_cas": ([_chat.partyKey("p1"), _chat.inviteKey(2, "p1")], ["", "{}", "*", "", 60]),
    # The presence hash alone: the name key is written apart on a cluster.
    "chat_presence_set": ([_chat.presenceKey(1)], [60, "1|n1", "proc", "n1"]),
    "chat_presence_drop": ([_chat.presenceKey(1)], ["s1", "1|n1"]),
    **{name: ([_mm.namespace], []) for name in scriptsFor()},
}


def _pairs(index, entry):
    return lambda batch: [k for c in batch for k in (index(c), entry(c, "n"))]


def _each(keyOf):
    return lambda batch: [keyOf(c) for c in batch]


# Scripts taking a batch of characters, logins or channels: their callers
# split it per hash slot (mmoshard.store.slots.slotBatches) with this key,
# build the keys of a batch so, and give these arguments.
BATCHED = {
    "auth_login_rotate": (logins.loginKey, _each(logins.loginKey),
                          lambda b: [0, 100, 100000, " ".join("0" for _ in b), 5]),
    "auth_login_end": (logins.loginKey, _each(logins.loginKey), lambda b: ["ban", 60000]),
    "locator_refresh": (locator.indexKey, _pairs(locator.indexKey, locator.entryKey),
                        lambda b: ["n", 60000]),
    "locator_withdraw": (locator.indexKey, _pairs(locator.indexKey, locator.entryKey),
                         lambda b: ["n"]),
    "world_lease_refresh": (lease.leaseKey, _each(lease.leaseKey), lambda b: ["n", 60000, "0"]),
    "world_lease_release": (lease.leaseKey, _each(lease.leaseKey), lambda b: ["n"]),
    "chat_expire": (_chat.presenceKey, _each(_chat.presenceKey), lambda b: [60]),
    "chat_presence": (_chat.presenceKey, _each(_chat.presenceKey), lambda b: []),
    "session_resume_append": (resumestore.recordKey,
                              lambda b: [k for s in b for k in (resumestore.recordKey(s),
                                                                resumestore.bufferKey(s))],
                              lambda b: [60000, "n1"] + [a for _ in b for a in (1, 0, 1, 1, "x")]),
    # A batch of parties' pointers, then of parties (mmoshard.partystore.readParties).
    "party_get_many": (partystore.partyOfKey, _each(partystore.partyOfKey), lambda b: []),
    "chat_history": (_chat.historyKey, _each(_chat.historyKey),
                     lambda b: [10, 60] + [a for i in range(len(b)) for a in (str(i), "{}")]),
}


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
        Every Script of the code base is listed here as cluster-safe (its keys in one slot, or its
        batches split per slot), and no module outside MODULES defines one.
        """
        sources = {
            ".".join(p.relative_to(ROOT.parent).with_suffix("").parts)
            for p in ROOT.rglob("*.py")
            if "test" not in p.relative_to(ROOT).parts[:-1] and "Script(" in p.read_text()
        }
        self.assertEqual(sources - set(MODULES), set())
        names = set(everyScript())
        listed = set(SAFE) | set(BATCHED)
        self.assertEqual(names - listed, set(), "scripts not known to be cluster-safe")
        self.assertEqual(listed - names, set(), "listed scripts that do not exist")
        self.assertEqual(len(listed), len(SAFE) + len(BATCHED))

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

    async def test_batchedScriptsRun(self):
        """
        The batching scripts, given many characters (logins, channels) split per slot as their
        callers split them, run on the cluster batch by batch; unsplit, a batch is refused.
        """
        scripts = everyScript()
        for name, (keyOf, keysOf, argsOf) in BATCHED.items():
            items = list(range(1, 41)) if keyOf not in (logins.loginKey, resumestore.recordKey) else \
                [f"s{i}" for i in range(40)]
            batches = slotBatches(self.store, items, keyOf, 1000)
            self.assertGreater(len(batches), 1, name)
            for batch in batches:
                try:
                    await self.store.evalScript(scripts[name], keysOf(batch), argsOf(batch))
                except CrossSlot:
                    self.fail(f"{name}: batch {batch} spans slots")
            with self.assertRaises(CrossSlot, msg=name):
                await self.store.evalScript(scripts[name], keysOf(items), argsOf(items))
