"""A chat session resumed on another node: its character follows it there by itself (sessionMoved), on the memory store and on Redis."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.chat.test.backends import MemoryBackend, RedisBackend
from mmoshard.chat.test.harness import Client, FakeSession
from mmoshard.chat.users import Carried


class MovedTests:
    async def befriend(self, a, b):
        await a.call("chat.friend.request", name=b.name)
        await self.eventually(lambda: b.events("chat.friend.requested"))
        await b.call("chat.friend.accept", character_id=a.cid)
        await self.eventually(lambda: a.events("chat.friend.added"))

    async def move(self, client, process, fromNode):
        """The session of C{client} resumes on C{process}; its old node lets go (reason moved)."""
        session = FakeSession(client.session.accountId)
        session.sessionId = client.session.sessionId
        client.end("moved")
        await process.chat.sessionMoved(session, fromNode)
        return Client(process, session, client.cid, client.name)

    async def test_character_follows_its_session(self):
        """
        After a move, with no chat.hello on the new node, the character is
        online there with its status, named and party channels: whispers,
        channel and party messages reach it, the locator names the new session,
        and its friend saw link-dead then online, never offline.
        """
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        carol = await p1.connect(self.char("carol"))
        await self.befriend(alice, bob)
        reply = await alice.call("chat.party.invite", name="Bob")
        await self.eventually(lambda: bob.events("chat.party.invited"))
        await bob.call("chat.party.accept", party_id=reply["party_id"])
        await alice.call("chat.status", status="busy", text="raiding")
        await alice.call("chat.channel.join", channel="lfg")
        await carol.call("chat.channel.join", channel="lfg")
        await alice.linkDead()
        await self.eventually(lambda: [e for e in bob.events("chat.presence")
                                       if e["character_id"] == alice.cid
                                       and e["state"] == "linkdead"])

        moved = await self.move(alice, p2, "p1")
        user = p2.chat.roster.users[alice.cid]
        self.assertIs(user.session, moved.session)
        self.assertEqual((user.status, user.text), ("busy", "raiding"))
        self.assertNotIn(alice.cid, p1.chat.roster.users)
        self.assertEqual((await p2.locator.where(alice.cid)).session("chat"),
                         ("p2", moved.session.sessionId))

        reply = await bob.call("chat.whisper", to="alice", text="welcome back")
        self.assertTrue(reply["delivered"])
        await carol.call("chat.channel.say", channel="lfg", text="need a healer")
        await bob.call("chat.party.say", text="pull now")
        await self.eventually(lambda: moved.events("chat.whisper")
                              and moved.events("chat.channel.message")
                              and moved.events("chat.party.message"))
        self.assertEqual(moved.events("chat.whisper")[0]["text"], "welcome back")
        self.assertEqual(moved.events("chat.channel.message")[0]["text"], "need a healer")
        self.assertEqual(moved.events("chat.party.message")[0]["text"], "pull now")
        self.assertEqual(await moved.call("chat.whisper", to="carol", text="hi"),
                         {"to": carol.cid, "delivered": True})

        states = [e["state"] for e in bob.events("chat.presence")
                  if e["character_id"] == alice.cid]
        self.assertEqual(states[-1], "online")
        self.assertNotIn("offline", states)
        # A chat.hello the client sends anyway answers with the same character.
        again = await moved.call("chat.hello", character_id=alice.cid)
        self.assertEqual((again["status"], again["channels"]), ("busy", ["lfg"]))
        self.assertIs(p2.chat.roster.users[alice.cid], user)

    async def acrossAMove(self, stopOldNode, request, **body):
        """
        Alice (on p1) and Bob (on p3) in a party; Alice's session leaves p1
        (which then stops when C{stopOldNode}) and Bob sends C{request}
        before p2 takes her session in.  @return: (the request's reply, Alice on p2).
        """
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        p3 = await self.process("p3")
        alice = await p1.connect(self.char("alice"))
        bob = await p3.connect(self.char("bob"))
        reply = await alice.call("chat.party.invite", name="Bob")
        await self.eventually(lambda: bob.events("chat.party.invited"))
        await bob.call("chat.party.accept", party_id=reply["party_id"])
        await bob.call("chat.party.say", text="before")  # its route names p1 now
        await self.eventually(lambda: alice.events("chat.party.message"))
        session = FakeSession(alice.session.accountId)
        session.sessionId = alice.session.sessionId
        alice.end("moved")
        if stopOldNode:
            await p1.stop()
        sent = Deferred.fromCoroutine(bob.call(request, **body))
        await self.settle(0.5)
        await p2.chat.sessionMoved(session, "p1")
        moved = Client(p2, session, alice.cid, alice.name)
        await self.settle(3.5)
        return self.successResultOf(sent), moved

    async def test_whisper_waits_for_a_moving_character(self):
        """
        A whisper reaching the old node of a character whose session just moved away is
        not refused offline there: left unanswered, its sender follows the presence to the
        new node once the session is taken in there, and it is delivered.
        """
        reply, moved = await self.acrossAMove(False, "chat.whisper", to="alice", text="where")
        self.assertEqual(reply, {"to": moved.cid, "delivered": True})
        self.assertEqual([e["text"] for e in moved.events("chat.whisper")], ["where"])

    async def test_whisper_waits_when_the_old_node_is_gone(self):
        """
        A whisper to a character whose old node has stopped (nothing listens there) waits
        for the presence to name its new node, and is delivered there.
        """
        reply, moved = await self.acrossAMove(True, "chat.whisper", to="alice", text="where")
        self.assertEqual(reply, {"to": moved.cid, "delivered": True})
        self.assertEqual([e["text"] for e in moved.events("chat.whisper")], ["where"])

    async def test_party_message_follows_a_moving_character(self):
        """
        A party message posted to the old node of a member whose session just moved away
        is sent on by that node to the member's new node, once it is taken in there:
        delivered live, not only kept in the history.
        """
        _, moved = await self.acrossAMove(False, "chat.party.say", text="pull now")
        self.assertEqual([e["text"] for e in moved.events("chat.party.message")], ["pull now"])

    async def test_party_message_follows_when_the_old_node_is_gone(self):
        """
        A party message to a member whose old node has stopped (nobody listens there) is
        sent on by its sender to the member's new node once the presence names it.
        """
        _, moved = await self.acrossAMove(True, "chat.party.say", text="pull now")
        self.assertEqual([e["text"] for e in moved.events("chat.party.message")], ["pull now"])

    async def test_logout_forgets_what_a_session_carries(self):
        """A session that ends for good leaves nothing to carry: a later move brings no character."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        store = p1.chat.store
        carried = Carried.decode(await store.carried(alice.session.sessionId))
        self.assertEqual(carried, Carried(alice.cid, "online", "", ()))
        await alice.end("logout")
        self.assertIsNone(await store.carried(alice.session.sessionId))
        session = FakeSession(alice.session.accountId)
        session.sessionId = alice.session.sessionId
        await p2.chat.sessionMoved(session, "p1")
        self.assertNotIn(alice.cid, p2.chat.roster.users)

    def test_bad_carried_state(self):
        """Carried state that is not what chat wrote is refused with ValueError, not used."""
        for raw in (b"\xc1", Carried(1, "online", "", ()).encode()[:-1],
                    b"\x94\xa1x\xa6online\xa0\x90"):
            self.assertRaises(ValueError, Carried.decode, raw)


class MemoryMovedTests(MemoryBackend, MovedTests, TestCase):
    pass


class RedisMovedTests(RedisBackend, MovedTests, TestCase):
    pass
