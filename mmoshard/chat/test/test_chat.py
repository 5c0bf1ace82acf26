"""Chat features on the memory store and on Redis: identity, whispers, presence, friends, blocks, moderation."""

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from mmoshard.chat import errors
from mmoshard.chat.moderation import IChatFilter
from mmoshard.chat.store import ChatStore
from mmoshard.chat.test.backends import ClusterBackend, MemoryBackend, RedisBackend
from mmoshard.store.errors import VolatileUnavailable
from mmoshard.store.memory import MemoryStore


class IdentityAndWhisperTests:
    async def test_hello_needs_own_character(self):
        """chat.hello accepts only a character of the session's account; other requests need a hello first."""
        p1 = await self.process()
        alice = await p1.connect(self.char("alice"))
        self.assertEqual(alice.process.chat.roster.users[alice.cid].name, "Alice")
        from mmoshard.chat.test.harness import Client, FakeSession

        bobId, _, _ = self.char("bob")
        stranger = Client(p1, FakeSession(self.char("alice")[1]), bobId, "Bob")
        self.assertEqual(
            await stranger.fails("chat.hello", character_id=bobId), errors.NOT_YOUR_CHARACTER
        )
        self.assertEqual(
            await stranger.fails("chat.whisper", to="Alice", text="hi"), errors.NO_HELLO
        )

    async def test_locator_follows_chat_sessions(self):
        """ILocator names the chat session a character said hello on, the newer one after a hello elsewhere, and forgets it when it ends."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        first = await p1.connect(self.char("alice"))
        where = await p1.locator.where(first.cid)
        self.assertEqual(where.session("chat"), ("p1", first.session.sessionId))
        second = await p2.connect(self.char("alice"))
        await self.settle()
        self.assertEqual((await p1.locator.where(first.cid)).session("chat"),
                         ("p2", second.session.sessionId))
        # The replaced session ends: the newer binding stays.
        await first.end()
        self.assertEqual((await p1.locator.where(first.cid)).session("chat"),
                         ("p2", second.session.sessionId))
        await second.end()
        self.assertIsNone(await p2.locator.where(first.cid))

    async def test_whisper_same_and_other_process(self):
        """A whisper by case-insensitive name reaches its recipient on the same process and on another one."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        carol = await p2.connect(self.char("carol"))
        reply = await alice.call("chat.whisper", to="BOB", text="hi bob")
        self.assertEqual(reply, {"to": bob.cid, "delivered": True})
        [w] = bob.events("chat.whisper")
        self.assertEqual((w["from_name"], w["text"]), ("Alice", "hi bob"))
        reply = await alice.call("chat.whisper", to="carol", text="hi carol")
        self.assertTrue(reply["delivered"])
        [w] = carol.events("chat.whisper")
        self.assertEqual((w["from"], w["text"]), (alice.cid, "hi carol"))
        await carol.call("chat.whisper", to="alice", text="back")
        self.assertEqual(alice.events("chat.whisper")[0]["text"], "back")

    async def test_whisper_offline(self):
        """Whispering an offline or unknown character is chat.offline; whispering oneself is chat.self."""
        p1 = await self.process()
        alice = await p1.connect(self.char("alice"))
        self.assertEqual(
            await alice.fails("chat.whisper", to="Dave", text="hi"), errors.OFFLINE
        )
        self.assertEqual(
            await alice.fails("chat.whisper", to="Nobody", text="hi"), errors.OFFLINE
        )
        self.assertEqual(await alice.fails("chat.whisper", to="alice", text="hi"), errors.SELF)

    async def test_invisible_looks_offline(self):
        """An invisible character cannot be whispered: it answers exactly as an offline one."""
        p1 = await self.process()
        alice = await p1.connect(self.char("alice"))
        await p1.connect(self.char("bob"), status="invisible")
        self.assertEqual(
            await alice.fails("chat.whisper", to="Bob", text="hi"), errors.OFFLINE
        )


class PresenceAndFriendTests:
    async def befriend(self, a, b):
        reply = await a.call("chat.friend.request", name=b.name)
        self.assertEqual(reply["status"], "sent")
        await self.eventually(lambda: b.events("chat.friend.requested"))
        await b.call("chat.friend.accept", character_id=a.cid)
        await self.eventually(lambda: a.events("chat.friend.added"))

    async def test_friend_request_accept_with_presence(self):
        """Friends across processes see each other's status, invisibility, link-dead, resume and logout."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        carol = await p2.connect(self.char("carol"))
        await self.befriend(alice, carol)
        listing = await alice.call("chat.friend.list")
        [friend] = listing["friends"]
        self.assertEqual((friend["name"], friend["state"]), ("Carol", "online"))
        await carol.call("chat.status", status="away", text="brb")
        await self.eventually(lambda: [
            e for e in alice.events("chat.presence") if e["status"] == "away"
        ])
        await carol.call("chat.status", status="invisible")
        await self.eventually(lambda: alice.events("chat.presence")[-1]["state"] == "offline")
        [friend] = (await alice.call("chat.friend.list"))["friends"]
        self.assertEqual(friend["state"], "offline")
        await carol.call("chat.status", status="online")
        await carol.linkDead()
        await self.eventually(lambda: alice.events("chat.presence")[-1]["state"] == "linkdead")
        await carol.resume()
        await self.eventually(lambda: alice.events("chat.presence")[-1]["state"] == "online")
        await carol.end()
        await self.eventually(lambda: alice.events("chat.presence")[-1]["state"] == "offline")
        [friend] = (await alice.call("chat.friend.list"))["friends"]
        self.assertEqual(friend["state"], "offline")

    async def test_hello_lists_friends_and_requests(self):
        """Hello lists friends with presence and pending requests; decline and remove are told to the other side."""
        p1 = await self.process()
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        await self.befriend(alice, bob)
        await alice.call("chat.friend.request", name="Dave")
        await bob.end()
        dave = await p1.connect(self.char("dave"))
        hello = await dave.call("chat.hello", character_id=dave.cid)
        self.assertEqual([r["name"] for r in hello["incoming"]], ["Alice"])
        await dave.call("chat.friend.decline", character_id=alice.cid)
        self.assertEqual(
            await dave.fails("chat.friend.accept", character_id=alice.cid), errors.NO_REQUEST
        )
        bob = await p1.connect(self.char("bob"))
        hello = await bob.call("chat.hello", character_id=bob.cid)
        self.assertEqual([(f["name"], f["state"]) for f in hello["friends"]],
                         [("Alice", "online")])
        await bob.call("chat.friend.remove", character_id=alice.cid)
        await self.eventually(lambda: alice.events("chat.friend.removed"))
        self.assertEqual((await alice.call("chat.friend.list"))["friends"], [])

    async def test_block_privacy(self):
        """A blocked character's whispers, invites and friend requests look like an offline target's, and the block ends friendship."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        await self.befriend(alice, bob)
        await bob.call("chat.block", name="alice")
        await self.eventually(lambda: alice.events("chat.friend.removed"))
        # Whisper: the same error and message as a character that is offline.
        blocked = await self._failure(alice, "chat.whisper", to="Bob", text="hi")
        await bob.end()
        offline = await self._failure(alice, "chat.whisper", to="Bob", text="hi")
        self.assertEqual(blocked, offline)
        bob = await p2.connect(self.char("bob"))
        # Party invite: offline too.
        self.assertEqual(
            await alice.fails("chat.party.invite", name="Bob"), errors.OFFLINE
        )
        # Friend request: answered as sent, but never reaches Bob.
        reply = await alice.call("chat.friend.request", name="Bob")
        self.assertEqual(reply["status"], "sent")
        await self.settle()
        self.assertEqual(bob.events("chat.friend.requested"), [])
        self.assertEqual(bob.events("chat.whisper"), [])
        self.assertEqual(bob.events("chat.party.invited"), [])
        hello = await bob.call("chat.friend.list")
        self.assertEqual(hello["incoming"], [])
        # Bob himself is told plainly that he blocks Alice.
        self.assertEqual(
            await bob.fails("chat.whisper", to="Alice", text="hi"), errors.YOU_BLOCK
        )
        await bob.call("chat.unblock", character_id=alice.cid)
        await alice.call("chat.whisper", to="Bob", text="hello again")
        await self.eventually(lambda: bob.events("chat.whisper"))

    async def _failure(self, client, type, **body):
        from mmoshard.wire.errors import ProtocolError

        try:
            await client.call(type, **body)
        except ProtocolError as e:
            return (e.info.code, e.info.message)
        self.fail("no error")


class ModerationTests:
    async def test_length_and_flood(self):
        """Messages over max_length are chat.too_long; past the burst, chat.rate_limited with a retry_after."""
        p1 = await self.process(config=self.chatConfig(max_length=10, rate=1.0, burst=3))
        alice = await p1.connect(self.char("alice"))
        await p1.connect(self.char("bob"))
        self.assertEqual(
            await alice.fails("chat.whisper", to="Bob", text="x" * 11), errors.TOO_LONG
        )
        for _ in range(2):
            await alice.call("chat.whisper", to="Bob", text="hi")
        from mmoshard.wire.errors import ProtocolError

        with self.assertRaises(ProtocolError) as caught:
            await alice.call("chat.whisper", to="Bob", text="hi")
        self.assertEqual(caught.exception.info.code, errors.RATE_LIMITED)
        self.assertGreater(caught.exception.info.retry_after, 0)

    async def test_operator_mute_across_processes_expires(self):
        """Only operators mute; a mute reaches another process, expires, outlives the session and is lifted by unmute."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        op = await p1.connect(self.char("opal"))
        alice = await p2.connect(self.char("alice"))
        await p2.connect(self.char("bob"))
        self.assertEqual(
            await alice.fails("chat.mute", name="Bob", seconds=10), errors.FORBIDDEN
        )
        await op.call("chat.mute", name="Alice", seconds=0.5, reason="spam")
        await self.eventually(lambda: alice.events("chat.muted"))
        self.assertEqual(
            await alice.fails("chat.whisper", to="Bob", text="hi"), errors.MUTED
        )
        await self.settle(0.6)
        await alice.call("chat.whisper", to="Bob", text="hi")
        # A mute outlives the session: it is in SQL.
        await op.call("chat.mute", name="Alice", seconds=60)
        await alice.end()
        alice = await p2.connect(self.char("alice"))
        self.assertEqual(
            await alice.fails("chat.whisper", to="Bob", text="hi"), errors.MUTED
        )
        await op.call("chat.unmute", name="Alice")
        await self.eventually(lambda: alice.events("chat.unmuted"))
        await alice.call("chat.whisper", to="Bob", text="hi")

    async def test_filter_hook(self):
        """The built-in filter masks banned words; a replacement IChatFilter may rewrite or refuse (chat.filtered)."""
        p1 = await self.process(config=self.chatConfig(banned_words=("darn",)))
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        await alice.call("chat.whisper", to="Bob", text="well Darn it")
        self.assertEqual(bob.events("chat.whisper")[-1]["text"], "well **** it")

        @implementer(IChatFilter)
        class Refuse:
            name = "refuse"

            def check(self, message):
                return None if "secret" in message.text else message.text.upper()

        refuse = Refuse()
        self.assertTrue(verifyObject(IChatFilter, refuse))
        p1.chat.gate.chatFilter = refuse
        self.assertEqual(
            await alice.fails("chat.whisper", to="Bob", text="a secret"), errors.FILTERED
        )
        await alice.call("chat.whisper", to="Bob", text="loud")
        self.assertEqual(bob.events("chat.whisper")[-1]["text"], "LOUD")

    async def test_announcement_reaches_every_process(self):
        """An operator's announcement reaches every character on every live process; others get chat.forbidden."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        op = await p1.connect(self.char("opal"))
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        self.assertEqual(await alice.fails("chat.announce", text="hey"), errors.FORBIDDEN)
        reply = await op.call("chat.announce", text="Maintenance at noon")
        self.assertEqual(reply["processes"], 2)
        await self.eventually(lambda: bob.events("chat.announcement"))
        self.assertEqual(alice.events("chat.announcement")[0]["text"], "Maintenance at noon")


class MemoryIdentityTests(MemoryBackend, IdentityAndWhisperTests, TestCase):
    pass


class RedisIdentityTests(RedisBackend, IdentityAndWhisperTests, TestCase):
    pass


class MemoryPresenceTests(MemoryBackend, PresenceAndFriendTests, TestCase):
    pass


class RedisPresenceTests(RedisBackend, PresenceAndFriendTests, TestCase):
    pass


class MemoryModerationTests(MemoryBackend, ModerationTests, TestCase):
    pass


class RedisModerationTests(RedisBackend, ModerationTests, TestCase):
    pass


class ClusterIdentityTests(ClusterBackend, IdentityAndWhisperTests, TestCase):
    """Whispers by name across processes on a Redis Cluster (name and presence keys in different slots)."""


class ClusterPresenceTests(ClusterBackend, PresenceAndFriendTests, TestCase):
    """Presence and friends across processes on a Redis Cluster."""


class StoreFailureTests(TestCase):
    """A store failure in a per-slot read reaches the handlers as the store's own error."""

    def test_presenceReadFailureIsTheStoresError(self):
        """
        presenceOf over a volatile store that does not answer fails with
        VolatileUnavailable itself (answered chat.unavailable, retryable),
        not a FirstError wrapping it (answered internal, logged as a bug).
        """
        class Down(MemoryStore):
            def evalScript(self, script, keys, args):
                return fail(VolatileUnavailable("Redis at test: Not received Redis response"))

        store = ChatStore(Down(Clock()))
        self.failureResultOf(Deferred.fromCoroutine(store.presenceOf([1, 2])), VolatileUnavailable)
