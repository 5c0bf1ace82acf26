"""Tickets and the lives of sessions, parties and accounts: drops, resumes, session ends, party changes and bans."""

from twisted.trial.unittest import TestCase

from mmoshard.matchmaking.test.harness import MatchmakingCase
from mmoshard.partychanges import PartyChanged, publishChange


class SessionTests(MatchmakingCase, TestCase):

    async def queuedParty(self, node):
        self.party("p1", "Tom", "Hal")
        tom, hal = await node.connect("Tom"), await node.connect("Hal")
        await tom.call("mm.queue", queue="dungeon5")
        return tom, hal

    async def test_linkDeadKeepsTheTicket(self):
        """A dropped connection (link-dead, then resumed) leaves the ticket in place."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        node.service.sessionLinkDead(hal.session)
        self.clock.advance(25)
        node.service.sessionResumed(hal.session)
        self.assertIsNotNone(await self.store.ticketOf(hal.cid))
        self.assertEqual(tom.events("mm.removed"), [])

    async def test_sessionEndRemovesTheTicket(self):
        """A session that ends (grace expired, logout) removes its ticket; the other members get mm.removed (gone)."""
        for reason in ("expired", "logout"):
            node = await self.node(f"mm-{reason}")
            tom, hal = await self.queuedParty(node)
            await hal.end(reason)
            self.flush()
            removed = tom.last("mm.removed")
            self.assertEqual((removed["reason"], removed["character_id"]), ("gone", hal.cid))
            self.assertIsNone(await self.store.ticketOf(tom.cid))
            self.assertIsNone((await self.locator.where(hal.cid)))

    async def test_replacedOrShutdownKeepsTheTicket(self):
        """A session replaced by a newer one, or ended by a server stop, keeps the ticket for the player's next session."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        await hal.end("replaced")
        await tom.end("shutdown")
        self.assertIsNotNone(await self.store.ticketOf(hal.cid))
        self.assertEqual(tom.events("mm.removed") + hal.events("mm.removed"), [])

    async def test_movedKeepsTheTicket(self):
        """A session that resumed on another node (ended here as moved) keeps the ticket and its place; nobody is told mm.removed."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        ticket = await self.store.ticketOf(hal.cid)
        await hal.end("moved")
        self.flush()
        self.assertEqual(await self.store.ticketOf(hal.cid), ticket)
        self.assertEqual(tom.events("mm.removed") + hal.events("mm.removed"), [])

    async def test_banRemoves(self):
        """A banned player's session end removes its ticket with reason banned."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        node.service.revoked(set(), {hal.session.accountId: 1e12}, "ban")
        await hal.end("revoked")
        self.flush()
        self.assertEqual(tom.last("mm.removed")["reason"], "banned")

    async def test_revokedWithoutBanIsGone(self):
        """A login revoked for another reason (logout everywhere) removes the ticket as gone."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        node.service.revoked(set(), {hal.session.accountId: 1e12}, "logout")
        await hal.end("revoked")
        self.flush()
        self.assertEqual(tom.last("mm.removed")["reason"], "gone")

    async def test_partyChangeRemovesTheTicket(self):
        """A party change announced on the party channel (a member joins) removes the party's ticket: mm.removed (party_changed) to its members."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        dan = self.chars["Dan"][0]
        await publishChange(node.volatile, PartyChanged(
            "p1", "joined", dan, tom.cid, (tom.cid, hal.cid, dan), (tom.cid, hal.cid)))
        self.flush()
        for member in (tom, hal):
            removed = member.last("mm.removed")
            self.assertEqual((removed["reason"], removed["character_id"]), ("party_changed", dan))
        self.assertIsNone(await self.store.ticketOf(tom.cid))

    async def test_lateAnnouncementOfTheTicketsOwnPartyLeavesIt(self):
        """The announcement of the change a ticket was made from (Hal joined, then Tom queued, then the news came) leaves the ticket; a later change still removes it."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        await publishChange(node.volatile, PartyChanged(
            "p1", "joined", hal.cid, tom.cid, (tom.cid, hal.cid), (tom.cid,)))
        self.flush()
        self.assertEqual(tom.events("mm.removed"), [])
        self.assertIsNotNone(await self.store.ticketOf(tom.cid))
        await publishChange(node.volatile, PartyChanged(
            "p1", "promoted", hal.cid, hal.cid, (hal.cid, tom.cid), (tom.cid, hal.cid)))
        self.flush()
        self.assertEqual(tom.last("mm.removed")["reason"], "party_changed")

    async def test_otherPartiesChangesLeaveTheTicket(self):
        """A change of another party, or a party's creation, leaves the ticket."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        await publishChange(node.volatile, PartyChanged(
            "p2", "left", hal.cid, tom.cid, (tom.cid,), (tom.cid, hal.cid)))
        await publishChange(node.volatile, PartyChanged(
            "p1", "created", tom.cid, tom.cid, (tom.cid,), ()))
        self.flush()
        self.assertIsNotNone(await self.store.ticketOf(tom.cid))

    async def test_partyChangeDuringTheCheck(self):
        """A party change during its ready check drops the party's ticket; the others are requeued (party_changed)."""
        node = await self.node()
        tom, hal = await self.queuedParty(node)
        others = {n: await node.connect(n) for n in ("Dan", "Dora", "Dirk")}
        for client in others.values():
            await client.call("mm.queue", queue="dungeon5")
        await self.matchPass(node)
        self.assertTrue(tom.events("mm.proposal"))
        await publishChange(node.volatile, PartyChanged(
            "p1", "left", hal.cid, tom.cid, (tom.cid,), (tom.cid, hal.cid)))
        self.flush()
        self.assertEqual(hal.last("mm.removed")["reason"], "party_changed")
        self.assertEqual(others["Dan"].last("mm.requeued")["reason"], "party_changed")
