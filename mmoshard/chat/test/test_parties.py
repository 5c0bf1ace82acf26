"""Parties and channels on the memory store and on Redis, and leader hand-over driven by a Clock."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from mmoshard.chat import errors
from mmoshard.chat.test.backends import ClusterBackend, MemoryBackend, RedisBackend
from mmoshard.store.errors import VolatileUnavailable



def lastParty(client):
    updates = client.events("chat.party.update")
    return updates[-1] if updates else None


class PartyTests:
    async def form(self, leader, *members):
        for m in members:
            reply = await leader.call("chat.party.invite", name=m.name)
            await self.eventually(lambda: m.events("chat.party.invited"))
            await m.call("chat.party.accept", party_id=reply["party_id"])
        return reply["party_id"]

    async def test_lifecycle_across_processes(self):
        """A party across processes: invite, decline, accept, size limit, party chat, kick, promote, leave and disband, and IParties reads."""
        p1 = await self.process("p1", config=self.chatConfig(party_max=3))
        p2 = await self.process("p2", config=self.chatConfig(party_max=3))
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        carol = await p1.connect(self.char("carol"))
        dave = await p2.connect(self.char("dave"))
        pid = await self.form(alice, bob)
        await self.eventually(lambda: lastParty(alice) and len(lastParty(alice)["party"]["members"]) == 2)
        parties = p2.chat.parties
        self.assertEqual(await parties.members(pid), [alice.cid, bob.cid])
        self.assertEqual(await p1.chat.parties.partyOf(bob.cid), pid)
        self.assertIsNone(await parties.partyOf(carol.cid))
        self.assertEqual(await parties.members("nope"), [])
        # Only the leader invites; declines are told to the leader.
        self.assertEqual(await bob.fails("chat.party.invite", name="Carol"), errors.NOT_LEADER)
        await alice.call("chat.party.invite", name="Carol")
        await carol.call("chat.party.decline", party_id=pid)
        await self.eventually(lambda: alice.events("chat.party.declined"))
        self.assertEqual(
            await carol.fails("chat.party.accept", party_id=pid), errors.NO_INVITE
        )
        await self.form(alice, carol)
        self.assertEqual(await alice.fails("chat.party.invite", name="Dave"), errors.PARTY_FULL)
        # Party chat reaches members on both processes, not the sender.
        await bob.call("chat.party.say", text="hello team")
        await self.eventually(lambda: alice.events("chat.party.message") and carol.events("chat.party.message"))
        self.assertEqual(alice.events("chat.party.message")[0]["from_name"], "Bob")
        self.assertEqual(bob.events("chat.party.message"), [])
        self.assertEqual(dave.events("chat.party.message"), [])
        # Kick, promote, leave; a party of one disbands.
        await alice.call("chat.party.kick", character_id=carol.cid)
        await self.eventually(lambda: lastParty(carol)["party"] is None if lastParty(carol) else False)
        self.assertEqual(lastParty(carol)["event"], "kicked")
        self.assertEqual(await carol.fails("chat.party.say", text="x"), errors.NOT_IN_PARTY)
        await alice.call("chat.party.promote", character_id=bob.cid)
        await self.eventually(lambda: lastParty(bob)["party"]["leader"] == bob.cid)
        self.assertEqual(await parties.members(pid), [bob.cid, alice.cid])
        await alice.call("chat.party.leave")
        await self.eventually(lambda: lastParty(bob)["party"] is None)
        self.assertEqual(lastParty(bob)["event"], "disbanded")
        self.assertEqual(await parties.members(pid), [])
        self.assertIsNone(await parties.partyOf(bob.cid))

    async def test_store_parties_read_what_chat_writes(self):
        """A process without chat (the core's StoreParties, its own store object) reads chat's parties: members leader first, a member's party, none after leaving."""
        from zope.interface.verify import verifyObject

        from mmoshard.interfaces import IParties
        from mmoshard.partystore import StoreParties

        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        carol = await p1.connect(self.char("carol"))
        reader = StoreParties(self.newVolatile())
        verifyObject(IParties, reader)
        pid = await self.form(alice, bob, carol)
        self.assertEqual(await reader.members(pid), [alice.cid, bob.cid, carol.cid])
        self.assertEqual(await reader.partyOf(carol.cid), pid)
        self.assertEqual(await reader.members("nope"), [])
        await bob.call("chat.party.leave")
        self.assertIsNone(await reader.partyOf(bob.cid))
        self.assertEqual(await reader.members(pid), [alice.cid, carol.cid])
        await alice.call("chat.party.promote", character_id=carol.cid)
        self.assertEqual(await reader.members(pid), [carol.cid, alice.cid])

    async def test_parties_of_many_in_one_read(self):
        """partiesOf answers many characters' parties at once, members leader first, on chat's IParties and the core's alike; the solo and the unknown are left out, and a member who left is gone from it."""
        from mmoshard.partystore import StoreParties

        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        carol = await p2.connect(self.char("carol"))
        dave = await p1.connect(self.char("dave"))
        eve = await p1.connect(self.char("eve"))
        first = await self.form(alice, bob)
        second = await self.form(carol, dave)
        cids = [alice.cid, bob.cid, carol.cid, dave.cid, eve.cid, 987654]
        want = {alice.cid: (first, [alice.cid, bob.cid]), bob.cid: (first, [alice.cid, bob.cid]),
                carol.cid: (second, [carol.cid, dave.cid]), dave.cid: (second, [carol.cid, dave.cid])}
        readers = [p1.chat.parties, p2.chat.parties, StoreParties(self.newVolatile())]
        for reader in readers:
            self.assertEqual(await reader.partiesOf(cids), want)
            self.assertEqual(await reader.partiesOf([]), {})
        await bob.call("chat.party.leave")
        for reader in readers:
            self.assertEqual(await reader.partiesOf(cids), {
                carol.cid: (second, [carol.cid, dave.cid]), dave.cid: (second, [carol.cid, dave.cid])})

    async def test_changes_announced_to_other_roles(self):
        """Every party change is published on parties:changes with the members before and after it, for other roles (matchmaking)."""
        from mmoshard.partychanges import subscribeChanges

        p1 = await self.process("p1")
        heard = []
        subscription = await subscribeChanges(self.newVolatile(), heard.append)
        self.addCleanup(subscription.unsubscribe)
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        pid = await self.form(alice, bob)
        await bob.call("chat.party.leave")
        await self.eventually(lambda: [c for c in heard if c.event == "disbanded"])
        self.assertEqual([(c.party_id, c.event, c.subject) for c in heard],
                         [(pid, "created", alice.cid), (pid, "joined", bob.cid),
                          (pid, "disbanded", bob.cid)])
        self.assertEqual((heard[1].members, heard[1].former, heard[1].leader),
                         ((alice.cid, bob.cid), (alice.cid,), alice.cid))
        self.assertEqual((heard[2].members, heard[2].former, heard[2].leader),
                         ((), (alice.cid, bob.cid), None))

    async def test_invite_expires(self):
        """A party invite cannot be accepted after invite_ttl."""
        p1 = await self.process(config=self.chatConfig(invite_ttl=0.3))
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        reply = await alice.call("chat.party.invite", name="Bob")
        await self.settle(0.5)
        self.assertEqual(
            await bob.fails("chat.party.accept", party_id=reply["party_id"]), errors.NO_INVITE
        )

    async def test_leader_leaving_hands_over_to_an_online_member(self):
        """A leaving leader's lead passes to an online member, skipping a link-dead one."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        carol = await p2.connect(self.char("carol"))
        pid = await self.form(alice, bob, carol)
        await bob.linkDead()
        await alice.call("chat.party.leave")
        await self.eventually(lambda: lastParty(carol)["event"] == "left")
        self.assertEqual(lastParty(carol)["party"]["leader"], carol.cid)
        self.assertEqual(await p1.chat.parties.members(pid), [carol.cid, bob.cid])

    async def test_party_survives_restart_with_history(self):
        """A party and its last history entries outlive the process; the new process reports offline members."""
        p1 = await self.process("p1", config=self.chatConfig(history=2))
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        pid = await self.form(alice, bob)
        for text in ("one", "two", "three"):
            await alice.call("chat.party.say", text=text)
            await self.settle(0.01)  # history is ordered by time
        await p1.stop()
        p1b = await self.process("p1b", config=self.chatConfig(history=2))
        hello = await p1b.connect(self.char("bob"))
        snapshot = await hello.call("chat.hello", character_id=bob.cid)
        self.assertEqual(snapshot["party"]["id"], pid)
        self.assertEqual([m["text"] for m in snapshot["party_history"]], ["two", "three"])
        info = await hello.call("chat.party.info")
        self.assertEqual(info["presence"][str(alice.cid)]["state"], "offline")


class ChannelTests:
    async def test_channels_limit_history_and_cross_process(self):
        """Channel names are checked, members limited, messages reach other processes but not the sender, and joiners get the history."""
        config = self.chatConfig(channel_max_members=2, history=3)
        p1 = await self.process("p1", config=config)
        p2 = await self.process("p2", config=config)
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        carol = await p2.connect(self.char("carol"))
        self.assertEqual(await alice.fails("chat.channel.join", channel="bad name!"),
                         errors.BAD_CHANNEL)
        await alice.call("chat.channel.join", channel="Trade")
        await bob.call("chat.channel.join", channel="trade")
        self.assertEqual(await carol.fails("chat.channel.join", channel="trade"),
                         errors.CHANNEL_FULL)
        self.assertEqual(await carol.fails("chat.channel.say", channel="trade", text="x"),
                         errors.NOT_IN_CHANNEL)
        for i in range(4):
            await alice.call("chat.channel.say", channel="trade", text=f"wts {i}")
        await self.eventually(lambda: len(bob.events("chat.channel.message")) == 4)
        self.assertEqual(alice.events("chat.channel.message"), [])
        await bob.call("chat.channel.leave", channel="trade")
        joined = await carol.call("chat.channel.join", channel="trade")
        self.assertEqual([m["text"] for m in joined["history"]], ["wts 1", "wts 2", "wts 3"])
        members = await carol.call("chat.channel.members", channel="trade")
        self.assertEqual(members["count"], 2)

    async def test_blocked_sender_hidden_in_channels(self):
        """A channel message from a blocked character is not delivered to the one blocking it."""
        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        await alice.call("chat.channel.join", channel="lfg")
        await bob.call("chat.channel.join", channel="lfg")
        await bob.call("chat.block", name="Alice")
        await alice.call("chat.channel.say", channel="lfg", text="anyone?")
        await self.settle()
        self.assertEqual(bob.events("chat.channel.message"), [])

    async def test_zone_channels(self):
        """joinZone/leaveZone from any process move a character between zone channels; a zone set while offline is joined at hello."""
        p1 = await self.process("p1")
        p2 = await self.process("p2")
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        # The world role may live in another process than the character.
        await p2.chat.channels.joinZone(alice.cid, "elwynn")
        await p1.chat.channels.joinZone(bob.cid, "elwynn")
        await self.eventually(lambda: alice.events("chat.channel.joined") and bob.events("chat.channel.joined"))
        self.assertEqual(alice.events("chat.channel.joined")[0]["channel"], "zone:elwynn")
        self.assertEqual(await alice.fails("chat.channel.leave", channel="zone:elwynn"),
                         errors.BAD_CHANNEL)
        await alice.call("chat.channel.say", channel="zone:elwynn", text="hi zone")
        await self.eventually(lambda: bob.events("chat.channel.message"))
        await p1.chat.channels.joinZone(alice.cid, "westfall")
        await self.eventually(lambda: alice.events("chat.channel.left"))
        await bob.call("chat.channel.say", channel="zone:elwynn", text="gone?")
        await self.settle()
        self.assertEqual(alice.events("chat.channel.message"), [])
        await p1.chat.channels.leaveZone(bob.cid, "elwynn")
        await self.eventually(lambda: bob.events("chat.channel.left"))
        # A zone set while offline is joined at hello.
        await p1.chat.channels.joinZone(self.char("carol")[0], "duskwood")
        carol = await p2.connect(self.char("carol"))
        hello = await carol.call("chat.hello", character_id=carol.cid)
        self.assertEqual(hello["zone_channel"], "zone:duskwood")

    async def test_zone_changes_from_a_process_without_chat(self):
        """A world-only process (its own store object on the same backend) moves a local chat user between zone channels."""
        from mmoshard.zonechat import StoreZoneChannels

        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        world = StoreZoneChannels(self.newVolatile())
        await world.joinZone(alice.cid, "elwynn")
        await self.eventually(lambda: alice.events("chat.channel.joined"))
        self.assertEqual(alice.events("chat.channel.joined")[0]["channel"], "zone:elwynn")
        self.assertIn("zone:elwynn", p1.chat.roster.users[alice.cid].channels)
        await alice.call("chat.channel.say", channel="zone:elwynn", text="hi zone")
        # Leaving another zone than the current one changes nothing.
        await world.leaveZone(alice.cid, "westfall")
        await self.settle()
        self.assertEqual(alice.events("chat.channel.left"), [])
        await world.leaveZone(alice.cid, "elwynn")
        await self.eventually(lambda: alice.events("chat.channel.left"))
        self.assertEqual(alice.events("chat.channel.left")[0]["channel"], "zone:elwynn")
        self.assertNotIn("zone:elwynn", p1.chat.roster.users[alice.cid].channels)
        self.assertEqual(await p1.chat.store.channelMembers("zone:elwynn"), {})
        # After the chat process stops it no longer listens.
        await p1.stop()
        await world.joinZone(alice.cid, "westfall")
        await self.settle()
        self.assertEqual(len(alice.events("chat.channel.joined")), 1)


class PresenceExpiryTests:
    async def test_crashed_process_players_go_offline_within_ttl(self):
        """A crashed process's players go offline within the presence TTL, its process entry is pruned and its leader's lead passes on."""
        config = self.chatConfig(presence_ttl=3.0)
        p1 = await self.process("p1", config=config)
        p2 = await self.process("p2", config=config)
        alice = await p1.connect(self.char("alice"))
        bob = await p2.connect(self.char("bob"))
        carol = await p1.connect(self.char("carol"))
        invite = await bob.call("chat.party.invite", name="Alice")
        await alice.call("chat.party.accept", party_id=invite["party_id"])
        await bob.call("chat.party.invite", name="Carol")
        await carol.call("chat.party.accept", party_id=invite["party_id"])
        await self.settle(1.2)  # a refresh has happened: entries are kept alive
        await alice.call("chat.whisper", to="Bob", text="still here")
        # p2 "crashes": it stops refreshing and answering, without cleanup.
        p2.chat.presence.stopRefreshing()
        await p2.chat.router.stop()
        await self.settle(3.2)
        self.assertEqual(await alice.fails("chat.whisper", to="Bob", text="hi"), errors.OFFLINE)
        self.assertEqual((await p1.chat.store.presenceOf([self.char("bob")[0]])), {})
        self.assertNotIn(p2.chat.procId, await p1.chat.store.liveProcesses(p1.chat.procId))
        # The dead leader's own grace timer will never run: the next party
        # message notices it has no presence and passes the lead on.
        await carol.call("chat.party.say", text="where is bob?")
        await self.eventually(lambda: lastParty(alice)["event"] == "leader_changed")
        self.assertEqual(
            await p1.chat.parties.members(invite["party_id"]),
            [alice.cid, bob.cid, carol.cid],
        )


    async def test_refresh_rewrites_a_lost_entry(self):
        """The presence refresh writes again an entry the store lost."""
        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        store = p1.chat.store
        await p1.volatile.delete(store.presenceKey(alice.cid), store.nameKey("alice"))
        self.assertIsNone(await store.lookupName("alice"))
        await p1.chat.presence.refresh()
        self.assertEqual(await store.lookupName("ALICE"), (alice.cid, p1.chat.procId))
        self.assertEqual((await store.presenceOf([alice.cid]))[alice.cid]["state"], "online")


    async def test_refresh_rewrites_the_lapsed_together(self):
        """The refresh writes again only the characters whose entries lapsed, all at once: a lapsed name is found again, and the writes do not wait for one another (one after the other, a login storm's made the refresh outlast the TTL)."""
        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        carol = await p1.connect(self.char("carol"))
        store = p1.chat.store
        await p1.volatile.delete(store.nameKey("bob"), store.presenceKey(carol.cid))
        presence = p1.chat.presence
        held = []
        write = type(presence).write

        def holdWrite(self, user):
            d = Deferred()
            held.append((user.cid, d))
            return d.addCallback(lambda _: write(self, user))

        self.patch(type(presence), "write", holdWrite)
        done = Deferred.fromCoroutine(presence.refresh())
        await self.eventually(lambda: len(held) == 2)
        self.assertEqual(sorted(cid for cid, _ in held), sorted([bob.cid, carol.cid]))
        for _, d in held:
            d.callback(None)
        await done
        self.assertEqual(await store.lookupName("Bob"), (bob.cid, p1.chat.procId))
        self.assertEqual(await store.lookupName("carol"), (carol.cid, p1.chat.procId))
        self.assertEqual(await store.lookupName("alice"), (alice.cid, p1.chat.procId))

    async def test_refresh_leaves_another_process_entry(self):
        """A character whose presence now names another process (it moved there) is not written back to this one by its refresh."""
        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        store = p1.chat.store
        await store.setPresence(alice.cid, "alice", "elsewhere",
                                {"sid": "s9", "state": "online", "proc": "elsewhere"}, 60)
        await p1.volatile.delete(store.nameKey("alice"))
        await p1.chat.presence.refresh()
        self.assertEqual((await store.presenceOf([alice.cid]))[alice.cid]["proc"], "elsewhere")
        self.assertIsNone(await store.lookupName("alice"))

    async def test_refresh_keeps_parties_when_a_rewrite_fails(self):
        """A refresh whose presence rewrite fails (the store past its deadline) still renews its characters' party keys, and reports the failure."""
        p1 = await self.process("p1")
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        reply = await alice.call("chat.party.invite", name="Bob")
        await bob.call("chat.party.accept", party_id=reply["party_id"])
        store = p1.chat.store
        partyKey = store.partyKey(reply["party_id"])
        await p1.volatile.expire(partyKey, 5)
        await p1.volatile.delete(store.nameKey("bob"))

        async def unanswered(*args):
            raise VolatileUnavailable("no answer within 2 s")

        self.patch(type(store), "setPresence", unanswered)
        with self.assertRaises(VolatileUnavailable):
            await p1.chat.presence.refresh()
        self.assertGreater(await p1.volatile.ttl(partyKey), 60)


class LeaderGraceTests(MemoryBackend, TestCase):
    """The lead passes when the leader stays link-dead past the grace, on a Clock."""

    async def test_link_dead_leader_hands_over_after_grace(self):
        """A link-dead leader keeps the lead within the resume grace and loses it, to an online member, after it."""
        clock = self.clock
        p1 = await self.process("p1", resumeGrace=20.0)
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        carol = await p1.connect(self.char("carol"))
        reply = await alice.call("chat.party.invite", name="Bob")
        await bob.call("chat.party.accept", party_id=reply["party_id"])
        await alice.call("chat.party.invite", name="Carol")
        await carol.call("chat.party.accept", party_id=reply["party_id"])
        pid = reply["party_id"]
        members = p1.chat.parties.members

        # Back within the grace: still the leader.
        await alice.linkDead()
        clock.advance(19)
        await alice.resume()
        clock.advance(5)
        self.assertEqual((await members(pid))[0], alice.cid)

        # Bob is link-dead too, so the lead skips him for Carol.
        await bob.linkDead()
        await alice.linkDead()
        clock.advance(19.9)
        self.assertEqual((await members(pid))[0], alice.cid)
        clock.advance(0.2)
        self.assertEqual(await members(pid), [carol.cid, alice.cid, bob.cid])
        self.assertEqual(lastParty(carol)["event"], "leader_changed")
        self.assertEqual(lastParty(bob)["party"]["leader"], carol.cid)

    async def test_lead_passes_when_the_link_dead_write_fails(self):
        """A leader whose link drops while the store does not answer its presence write still loses the lead after the grace: the write's failure does not keep the grace from starting."""
        p1 = await self.process("p1", config=self.chatConfig(leader_grace=5.0))
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        reply = await alice.call("chat.party.invite", name="Bob")
        await bob.call("chat.party.accept", party_id=reply["party_id"])

        async def unanswered(*args):
            raise VolatileUnavailable("no answer within 2 s")

        self.patch(type(p1.chat.store), "setPresence", unanswered)
        await alice.linkDead()
        self.clock.advance(5.1)
        self.assertEqual((await p1.chat.parties.members(reply["party_id"]))[0], bob.cid)
        self.assertEqual(lastParty(bob)["party"]["leader"], bob.cid)

    async def test_configured_grace_and_session_end(self):
        """leader_grace overrides the resume grace; a leader whose session ends hands over at once and stays a member."""
        clock = self.clock
        p1 = await self.process("p1", config=self.chatConfig(leader_grace=5.0))
        alice = await p1.connect(self.char("alice"))
        bob = await p1.connect(self.char("bob"))
        reply = await alice.call("chat.party.invite", name="Bob")
        await bob.call("chat.party.accept", party_id=reply["party_id"])
        await alice.linkDead()
        clock.advance(5.1)
        self.assertEqual((await p1.chat.parties.members(reply["party_id"]))[0], bob.cid)
        # A leader whose session ends hands over at once (and stays a member).
        await bob.end()
        await alice.resume()
        self.assertEqual(
            await p1.chat.parties.members(reply["party_id"]), [bob.cid, alice.cid]
        )


class MemoryPartyTests(MemoryBackend, PartyTests, TestCase):
    pass


class RedisPartyTests(RedisBackend, PartyTests, TestCase):
    pass


class MemoryChannelTests(MemoryBackend, ChannelTests, TestCase):
    pass


class RedisChannelTests(RedisBackend, ChannelTests, TestCase):
    pass


class MemoryPresenceExpiryTests(MemoryBackend, PresenceExpiryTests, TestCase):
    pass


class RedisPresenceExpiryTests(RedisBackend, PresenceExpiryTests, TestCase):
    pass


class ClusterPartyTests(ClusterBackend, PartyTests, TestCase):
    """Parties on a Redis Cluster: members' keys in other slots than their party's."""


class ClusterChannelTests(ClusterBackend, ChannelTests, TestCase):
    """Channels on a Redis Cluster."""


class ClusterPresenceExpiryTests(ClusterBackend, PresenceExpiryTests, TestCase):
    """Presence expiry on a Redis Cluster."""
