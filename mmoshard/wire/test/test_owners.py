"""One session per account and kind of node, per login: the CLAIM_OWNER rule on nodes sharing a memory store, on a Clock."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from mmoshard.wire import errors
from mmoshard.wire.manager import CLAIM_OWNER, ownerField, ownersKey
from mmoshard.wire.test.helpers import Server, makeVolatile


# (field, login id, kind) claimed in turn, and the fields each claim ends.
CLAIMS = [
    (("s1@world-1", "phone", "world"), []),
    (("s2@chat-1", "phone", "chat"), []),
    (("s3@world-2", "phone", "world"), ["s1@world-1"]),
    (("s4@solo", "phone", "chat,world"), ["s2@chat-1", "s3@world-2"]),
    (("s5@bare-1", "phone", ""), []),
    (("s6@bare-2", "phone", ""), ["s5@bare-1"]),
    (("s7@chat-9", "tablet", "chat"), ["s4@solo", "s6@bare-2"]),
    (("s8@chat-9", "tablet", "match"), ["s7@chat-9"]),
]


async def runClaims(testCase, store, key):
    """
    Run L{CLAIMS} through C{CLAIM_OWNER} on C{store}, then one more after an
    unreadable entry: each ends what the table says, whichever store runs it.
    """
    for (field, sid, kind), ended in CLAIMS:
        result = await store.evalScript(CLAIM_OWNER, [key], [field, sid, kind, 60000])
        testCase.assertEqual(sorted(result), sorted(f.encode() for f in ended), field)
    await store.hset(key, {"junk@x": "no newline"})
    result = await store.evalScript(CLAIM_OWNER, [key], ["s9@world-1", "tablet", "world", 60000])
    testCase.assertEqual(result, [b"junk@x"])
    testCase.assertEqual(
        await store.hgetall(key), {"s8@chat-9": b"match\ntablet", "s9@world-1": b"world\ntablet"})
    ttl = await store.ttl(key)
    testCase.assertTrue(59.0 < ttl <= 60.0, ttl)


def serving(server, *namespaces):
    """Register a no-op handler in each of C{namespaces}: they make the node's kind."""
    for namespace in namespaces:
        server.manager.addHandlers(namespace, {f"{namespace}.noop": lambda session, m: None})
    return server


class OwnersTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.volatile = makeVolatile(self.clock)

    def node(self, nodeId, *namespaces):
        server = Server(self, clock=self.clock, volatile=self.volatile, nodeId=nodeId)
        return serving(server, *namespaces)

    def owners(self, accountId=7):
        """@return: the account's owners hash as {field: (kind, login id)}."""
        raw = self.successResultOf(self.volatile.hgetall(ownersKey(accountId)))
        return {f: tuple(v.decode().split("\n")) for f, v in raw.items()}

    def replaced(self, peer):
        """@return: whether C{peer}'s session was ended with session.replaced."""
        self.clock.advance(0)  # the memory store's pub/sub delivers from the clock
        return any(m.get("code") == errors.REPLACED for m in peer.received()) and peer.closed

    def worldAndChat(self):
        """
        @return: (world node, chat node, world peer, chat peer): sessions of
            account 7's "phone" login on a world node and on a chat node.
        """
        world = self.node("world-1", "world")
        chat = self.node("chat-1", "chat")
        return world, chat, world.welcomed(7, sid="phone"), chat.welcomed(7, sid="phone")

    def assertReplaced(self, *peers):
        """Each of C{peers}' sessions was ended with session.replaced."""
        for peer in peers:
            self.assertTrue(self.replaced(peer), peer.welcome)

    def assertNotReplaced(self, *peers):
        """None of C{peers}' sessions was ended with session.replaced."""
        for peer in peers:
            self.assertFalse(self.replaced(peer), peer.welcome)

    def test_sameLoginOtherKindsCoexist(self):
        """
        Sessions of one login on a world node and a chat node both live; each has its
        entry, with its node's kind, in the account's owners hash.
        """
        world, chat, w, c = self.worldAndChat()
        self.assertNotReplaced(w, c)
        self.assertEqual(self.owners(), {
            ownerField("world-1", w.welcome["session_id"]): ("world", "phone"),
            ownerField("chat-1", c.welcome["session_id"]): ("chat", "phone"),
        })
        self.assertEqual(world.listener.events[-1][0], "started")
        self.assertEqual(chat.listener.events[-1][0], "started")

    def test_anotherLoginReplacesEveryKind(self):
        """
        A hello of another login (another device) ends the login's sessions on every
        node, of every kind, and is the only entry left.
        """
        world, chat, w, c = self.worldAndChat()
        m = self.node("match-1", "match").welcomed(7, sid="tablet")
        self.assertReplaced(w, c)
        self.assertEqual(world.listener.events[-1][2], "replaced")
        self.assertEqual(chat.listener.events[-1][2], "replaced")
        self.assertNotReplaced(m)
        self.assertEqual(self.owners(), {
            ownerField("match-1", m.welcome["session_id"]): ("match", "tablet")})

    def test_anotherLoginOnSameNode(self):
        """A hello of another login on the world node ends the world session there and the chat one elsewhere."""
        world, chat, w, c = self.worldAndChat()
        again = world.welcomed(7, sid="tablet")
        self.assertReplaced(w, c)
        self.assertNotReplaced(again)
        self.assertEqual(list(world.manager.sessions), [again.welcome["session_id"]])
        self.assertEqual(chat.manager.sessions, {})

    def test_sameLoginSameKindReplaces(self):
        """
        A second session of the same login on another node of the same kind (a
        reconnect without resume, a zone transfer) ends the older one; the login's
        session of another kind stays.
        """
        worldA = self.node("world-a", "world")
        worldB = self.node("world-b", "world")
        chat = self.node("chat-1", "chat")
        old = worldA.welcomed(7, sid="phone")
        c = chat.welcomed(7, sid="phone")
        new = worldB.welcomed(7, sid="phone")
        self.assertReplaced(old)
        self.assertNotReplaced(new, c)
        self.assertEqual(set(self.owners()), {
            ownerField("world-b", new.welcome["session_id"]),
            ownerField("chat-1", c.welcome["session_id"]),
        })

    def test_sameLoginSameNodeReplaces(self):
        """A second session of the same login on the same node ends the older one."""
        world, chat, old, c = self.worldAndChat()
        new = world.welcomed(7, sid="phone")
        self.assertReplaced(old)
        self.assertNotReplaced(new, c)
        self.assertEqual(len(self.owners()), 2)

    def test_overlappingKindsReplace(self):
        """
        Kinds that share a namespace conflict: a chat node's session of the login
        ends its session on an all-in-one (chat and world) node, and the reverse.
        """
        both = self.node("solo", "chat", "world")
        chat = self.node("chat-1", "chat")
        first = both.welcomed(7, sid="phone")
        second = chat.welcomed(7, sid="phone")
        self.assertReplaced(first)
        third = both.welcomed(7, sid="phone")
        self.assertReplaced(second)
        self.assertNotReplaced(third)
        self.assertEqual(self.owners(), {
            ownerField("solo", third.welcome["session_id"]): ("chat,world", "phone")})

    def test_releaseRemovesOnlyItsOwnEntry(self):
        """
        Ending the chat session removes its entry alone: the world session keeps its
        own, so another login still finds and replaces it.
        """
        world, chat, w, c = self.worldAndChat()
        c.send({"t": "bye"})
        self.assertEqual(chat.listener.events[-1][2], "logout")
        self.assertEqual(set(self.owners()), {ownerField("world-1", w.welcome["session_id"])})
        chat.welcomed(7, sid="tablet")
        self.assertReplaced(w)

    def test_otherAccountsUntouched(self):
        """Another account's sessions, whatever their login id, are not this account's business."""
        world = self.node("world-1", "world")
        chat = self.node("chat-1", "chat")
        w = world.welcomed(7, sid="phone")
        other = chat.welcomed(8, sid="tablet")
        self.assertNotReplaced(w, other)
        self.assertEqual(len(self.owners(7)), 1)
        self.assertEqual(len(self.owners(8)), 1)

    def test_claimScriptOnMemory(self):
        """The memory store runs the claim script's rule step by step (Redis runs the Lua: test_redis)."""
        d = Deferred.fromCoroutine(runClaims(self, self.volatile, "owners:test"))
        self.successResultOf(d)
