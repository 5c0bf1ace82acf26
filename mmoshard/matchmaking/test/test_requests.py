"""The mm.* requests one by one: what each answers, and the typed error of each refusal."""

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import TestCase

from mmoshard.matchmaking import errors
from mmoshard.matchmaking.handlers import REQUEST_TYPES
from mmoshard.matchmaking.test.fakes import FakeSession
from mmoshard.matchmaking.test.harness import Client, MatchmakingCase
from mmoshard.store.errors import SQLUnavailable


class HelloTests(MatchmakingCase, TestCase):

    async def test_registersEveryRequest(self):
        """The node's router gets a handler for exactly the documented mm.* requests."""
        node = await self.node()
        self.assertEqual(sorted(node.router.handlers), sorted(REQUEST_TYPES))
        self.assertEqual(node.router.listeners, [node.service])

    async def test_helloAnswersTheCharacterAndQueues(self):
        """mm.hello names the character, its class's role and every queue, and no ticket yet."""
        node = await self.node()
        tom = await node.connect("Tom")
        reply = await tom.call("mm.hello", character_id=tom.cid)
        self.assertEqual((reply["name"], reply["class"], reply["role"]), ("Tom", "warrior", "tank"))
        self.assertEqual([q["name"] for q in reply["queues"]], ["arena2v2", "dungeon5", "duo"])
        self.assertEqual(reply["queues"][1]["quotas"], {"tank": 1, "healer": 1, "damage": 3})
        self.assertIsNone(reply["ticket"])
        self.assertIsNone(reply["proposal"])

    async def test_helloBindsTheSessionInTheLocator(self):
        """After mm.hello the locator knows the character's matchmaking session on this node."""
        node = await self.node()
        tom = await node.connect("Tom")
        location = await self.locator.where(tom.cid)
        self.assertEqual(location.sessions, (("matchmaking", "mm-1", tom.session.sessionId),))

    async def test_anotherAccountsCharacterIsRefused(self):
        """mm.hello with a character of another account is mm.not_your_character."""
        node = await self.node()
        tom = await node.connect("Tom")
        stranger = Client(node, FakeSession(tom.session.accountId), self.chars["Hal"][0], "Hal")
        code, _ = await stranger.fails("mm.hello", character_id=self.chars["Hal"][0])
        self.assertEqual(code, errors.NOT_YOUR_CHARACTER)

    async def test_requestsBeforeHelloAreRefused(self):
        """Any mm.* request but mm.hello before it is mm.no_hello."""
        node = await self.node()
        client = Client(node, FakeSession(self.chars["Tom"][1]), self.chars["Tom"][0], "Tom")
        for type in ("mm.queue", "mm.cancel", "mm.status", "mm.accept", "mm.decline"):
            code, _ = await client.fails(type, queue="dungeon5", match="x")
            self.assertEqual(code, errors.NO_HELLO, type)

    async def test_oneSessionOneCharacter(self):
        """A session that said mm.hello as one character cannot say it as another: mm.bad_request."""
        node = await self.node()
        tom = await node.connect("Tom")
        code, _ = await tom.fails("mm.hello", character_id=self.chars["Hal"][0])
        self.assertEqual(code, errors.BAD_REQUEST)


class QueueTests(MatchmakingCase, TestCase):

    async def test_soloQueueAnswersTicket(self):
        """A solo mm.queue answers its ticket, queue and eta_s, and mm.status shows the waiting ticket."""
        node = await self.node()
        dan = await node.connect("Dan")
        reply = await dan.call("mm.queue", queue="dungeon5")
        self.assertEqual(reply["queue"], "dungeon5")
        self.assertIn("eta_s", reply)
        self.assertEqual(reply["members"], [{"character_id": dan.cid, "name": "Dan",
                                             "roles": ["damage"]}])
        self.clock.advance(7)
        status = await dan.call("mm.status")
        self.assertEqual((status["ticket"]["id"], status["ticket"]["waited_s"]),
                         (reply["ticket"], 7.0))

    async def test_unknownQueue(self):
        """mm.queue of a queue that does not exist is mm.unknown_queue, listing the queues."""
        node = await self.node()
        dan = await node.connect("Dan")
        code, details = await dan.fails("mm.queue", queue="nope")
        self.assertEqual((code, details["queues"]), (errors.UNKNOWN_QUEUE,
                                                     ["arena2v2", "dungeon5", "duo"]))

    async def test_twiceIsAlreadyQueued(self):
        """A character already queued anywhere cannot queue again: mm.already_queued."""
        node = await self.node()
        dan = await node.connect("Dan")
        await dan.call("mm.queue", queue="dungeon5")
        code, _ = await dan.fails("mm.queue", queue="duo")
        self.assertEqual(code, errors.ALREADY_QUEUED)

    async def test_chosenRoles(self):
        """A player may choose the roles it plays; a role the queue has no place for is dropped, none left is mm.role_unavailable."""
        node = await self.node()
        tom, hal = await node.connect("Tom"), await node.connect("Hal")
        reply = await tom.call("mm.queue", queue="dungeon5", roles=["tank", "damage"])
        self.assertEqual(reply["members"][0]["roles"], ["tank", "damage"])
        code, details = await hal.fails("mm.queue", queue="duo")
        self.assertEqual((code, details["character_id"]), (errors.ROLE_UNAVAILABLE, hal.cid))
        code, _ = await hal.fails("mm.queue", queue="duo", roles=["healer"])
        self.assertEqual(code, errors.ROLE_UNAVAILABLE)
        await hal.call("mm.queue", queue="duo", roles=["healer", "damage"])
        self.assertEqual((await hal.call("mm.status"))["ticket"]["members"][0]["roles"],
                         ["damage"])

    async def test_badRoles(self):
        """roles that are not a list of distinct known roles are mm.bad_request."""
        node = await self.node()
        dan = await node.connect("Dan")
        for roles in ([], ["wizard"], ["damage", "damage"], "damage", {"x": ["tank"]}):
            code, _ = await dan.fails("mm.queue", queue="dungeon5", roles=roles)
            self.assertEqual(code, errors.BAD_REQUEST, roles)

    async def test_partyQueuedByItsLeader(self):
        """The leader queues the whole party in one ticket; the others are told with mm.queued and see it in mm.status."""
        node = await self.node()
        self.party("p1", "Tom", "Hal", "Dan")
        tom, hal, dan = [await node.connect(n) for n in ("Tom", "Hal", "Dan")]
        reply = await tom.call("mm.queue", queue="dungeon5",
                               roles={str(dan.cid): ["damage"], str(tom.cid): ["tank"]})
        self.assertEqual([m["character_id"] for m in reply["members"]], [tom.cid, hal.cid, dan.cid])
        self.flush()
        for member in (hal, dan):
            queued = member.last("mm.queued")
            self.assertEqual((queued["id"], queued["leader"], queued["party_id"]),
                             (reply["ticket"], tom.cid, "p1"))
            self.assertEqual((await member.call("mm.status"))["ticket"]["id"], reply["ticket"])
        self.assertEqual(tom.events("mm.queued"), [])

    async def test_onlyTheLeaderQueuesTheParty(self):
        """A party member who is not its leader gets mm.not_leader, naming the leader."""
        node = await self.node()
        self.party("p1", "Tom", "Hal")
        await node.connect("Tom")
        hal = await node.connect("Hal")
        code, details = await hal.fails("mm.queue", queue="dungeon5")
        self.assertEqual((code, details["character_id"]), (errors.NOT_LEADER, self.chars["Tom"][0]))

    async def test_everyMemberOnline(self):
        """A party with a member without a matchmaking session cannot queue: mm.member_offline names it."""
        node = await self.node()
        self.party("p1", "Tom", "Hal")
        tom = await node.connect("Tom")
        code, details = await tom.fails("mm.queue", queue="dungeon5")
        self.assertEqual((code, details["character_id"]), (errors.MEMBER_OFFLINE,
                                                           self.chars["Hal"][0]))

    async def test_memberOnAnotherNodeIsOnline(self):
        """A member whose matchmaking session is on another node counts as online (the locator)."""
        one, two = await self.node("mm-1"), await self.node("mm-2", instances=False)
        self.party("p1", "Tom", "Hal")
        tom = await one.connect("Tom")
        hal = await two.connect("Hal")
        await tom.call("mm.queue", queue="dungeon5")
        self.flush()
        self.assertEqual(len(hal.events("mm.queued")), 1)

    async def test_memberInAnotherQueue(self):
        """A party one of whose members is queued already is refused with mm.already_queued."""
        node = await self.node()
        tom, dan = await node.connect("Tom"), await node.connect("Dan")
        await dan.call("mm.queue", queue="duo")
        self.party("p1", "Tom", "Dan")
        code, _ = await tom.fails("mm.queue", queue="dungeon5")
        self.assertEqual(code, errors.ALREADY_QUEUED)

    async def test_partyTooLarge(self):
        """A party larger than a team is mm.party_too_large."""
        node = await self.node()
        self.party("p1", "Dan", "Dora", "Dirk")
        for name in ("Dan", "Dora", "Dirk"):
            await node.connect(name)
        code, _ = await (await node.connect("Dan")).fails("mm.queue", queue="duo")
        self.assertEqual(code, errors.PARTY_TOO_LARGE)

    async def test_partyThatCannotFillPlaces(self):
        """Two tanks in a party for one tank place is mm.role_unavailable at once, not a ticket that never matches."""
        node = await self.node()
        self.party("p1", "Tom", "Tina")
        tom = await node.connect("Tom")
        await node.connect("Tina")
        code, _ = await tom.fails("mm.queue", queue="dungeon5")
        self.assertEqual(code, errors.ROLE_UNAVAILABLE)
        await tom.call("mm.queue", queue="dungeon5",
                       roles={str(self.chars["Tina"][0]): ["tank", "damage"]})

    async def test_ratedQueueTakesRatings(self):
        """In a rated queue each member carries its rating of that queue (IMatchResults)."""
        self.results.fixed[self.chars["Dan"][0]] = 1712.0
        node = await self.node()
        dan = await node.connect("Dan")
        reply = await dan.call("mm.queue", queue="arena2v2")
        ticket = await self.store.get(reply["ticket"])
        self.assertEqual(ticket.members[0].rating, 1712.0)

    async def test_ratingKeptForAWhile(self):
        """
        A node keeps the rating it read for a character of its own for rating_cache
        seconds: a changed rating shows on the ticket queued after that, not before.
        """
        node, client, dan = await self.queuedOnceAt(1712.0)
        self.results.fixed[dan] = 1800.0
        self.clock.advance(30)
        self.assertEqual(await self.queuedRating(client), 1712.0)
        await client.call("mm.cancel")
        self.clock.advance(31)
        self.assertEqual(await self.queuedRating(client), 1800.0)

    async def test_ratingForgottenWhenMatched(self):
        """A character's mm.matched in a rated queue makes its next ticket read its rating again (the result changed it)."""
        node, client, dan = await self.queuedOnceAt(1712.0)
        self.results.fixed[dan] = 1690.0
        node.service.users[dan].deliver("mm.matched", {"match": "arena2v2/x", "queue": "arena2v2"})
        self.assertEqual(await self.queuedRating(client), 1690.0)

    async def test_ratingReadAtHello(self):
        """A character's ratings are read as it says mm.hello: its arena mm.queue then reads none, and its ticket has the rating."""
        dan = self.chars["Dan"][0]
        self.results.fixed[dan] = 1712.0
        node = await self.node(rating_cache=60.0)
        reads = []
        read = self.results.ratings
        self.results.ratings = lambda queue, ids: reads.append((queue, list(ids))) or read(queue, ids)
        client = await node.connect("Dan")
        self.assertEqual(reads, [("arena2v2", [dan])])
        self.assertEqual(await self.queuedRating(client), 1712.0)
        self.assertEqual(len(reads), 1)

    async def test_ratingNotReadAtHelloIsReadAtQueue(self):
        """A ratings read that fails at mm.hello does not fail the hello: the arena mm.queue reads it then."""
        dan = self.chars["Dan"][0]
        self.results.fixed[dan] = 1712.0
        node = await self.node(rating_cache=60.0)
        read = self.results.ratings
        self.results.ratings = lambda queue, ids: fail(SQLUnavailable("down"))
        client = await node.connect("Dan")
        self.results.ratings = read
        self.assertEqual(await self.queuedRating(client), 1712.0)

    async def queuedOnceAt(self, rating):
        """Dan, rated C{rating}, queues in the arena and cancels: @return: (node, client, his id)."""
        dan = self.chars["Dan"][0]
        self.results.fixed[dan] = rating
        node = await self.node(rating_cache=60.0)
        client = await node.connect("Dan")
        await client.call("mm.queue", queue="arena2v2")
        await client.call("mm.cancel")
        return node, client, dan

    async def queuedRating(self, client):
        """@return: the rating on the ticket C{client} queues in the arena now."""
        reply = await client.call("mm.queue", queue="arena2v2")
        return (await self.store.get(reply["ticket"])).members[0].rating


class HeldReads:
    """Wrap a fake's read so each call waits for the test to C{release} it: the calls made meanwhile are counted."""

    def __init__(self, read):
        self.read = read
        self.calls = []

    def __call__(self, *args):
        d = Deferred()
        self.calls.append((args, d))
        return d

    def release(self):
        for args, d in self.calls:
            if not d.called:
                self.read(*args).chainDeferred(d)


class BatchedReadTests(MatchmakingCase, TestCase):

    async def test_queuesAtOnceShareOnePartyRead(self):
        """Leaders and solo players queueing while a party read is out share the next one: three reads for six mm.queue, and every ticket is right."""
        node = await self.node()
        self.party("p1", "Tom", "Hal", "Dan")
        self.party("p2", "Tina", "Hana")
        clients = {n: await node.connect(n) for n in ("Tom", "Hal", "Dan", "Tina", "Hana", "Dora",
                                                       "Dirk", "Drew")}
        held = self.parties.partiesOf = HeldReads(self.parties.partiesOf)
        queued = [Deferred.fromCoroutine(clients[n].call("mm.queue", queue="dungeon5"))
                  for n in ("Dora", "Tom", "Tina", "Dirk", "Drew")]
        # The first went alone; the four after it wait for it to come back.
        self.assertEqual([args for args, _ in held.calls], [([clients["Dora"].cid],)])
        held.release()
        self.assertEqual(len(held.calls), 2)
        self.assertEqual(sorted(held.calls[1][0][0]),
                         sorted(clients[n].cid for n in ("Tom", "Tina", "Dirk", "Drew")))
        late = Deferred.fromCoroutine(clients["Hal"].call("mm.queue", queue="dungeon5"))
        held.release()
        held.release()
        replies = [self.successResultOf(d) for d in queued]
        self.assertEqual(len(held.calls), 3)
        self.assertEqual([[m["character_id"] for m in r["members"]] for r in replies],
                         [[clients[n].cid for n in names] for names in
                          (["Dora"], ["Tom", "Hal", "Dan"], ["Tina", "Hana"], ["Dirk"], ["Drew"])])
        self.assertEqual(self.failureResultOf(late).value.info.code, errors.NOT_LEADER)

    async def test_ratedQueuesAtOnceShareOneRatingsRead(self):
        """Rated tickets queued while a ratings read is out share the next one, each with its own rating."""
        for name, rating in (("Dan", 1712.0), ("Dora", 1390.0), ("Dirk", 1801.0)):
            self.results.fixed[self.chars[name][0]] = rating
        # Nothing kept: each mm.queue reads (rating_cache 0 reads none at hello).
        node = await self.node(rating_cache=0.0)
        clients = {n: await node.connect(n) for n in ("Dan", "Dora", "Dirk")}
        held = self.results.ratings = HeldReads(self.results.ratings)
        queued = [Deferred.fromCoroutine(clients[n].call("mm.queue", queue="arena2v2"))
                  for n in ("Dan", "Dora", "Dirk")]
        held.release()
        self.assertEqual(len(held.calls), 2)
        self.assertEqual(held.calls[1][0], ("arena2v2", sorted([clients["Dora"].cid, clients["Dirk"].cid])))
        held.release()
        tickets = [await self.store.get(self.successResultOf(d)["ticket"]) for d in queued]
        self.assertEqual([t.members[0].rating for t in tickets], [1712.0, 1390.0, 1801.0])


class CancelTests(MatchmakingCase, TestCase):

    async def test_cancelRemovesTheWholePartyTicket(self):
        """mm.cancel by any member removes the party's ticket; the other members get mm.removed (cancelled, by whom)."""
        node = await self.node()
        self.party("p1", "Tom", "Hal")
        tom, hal = await node.connect("Tom"), await node.connect("Hal")
        queued = await tom.call("mm.queue", queue="dungeon5")
        reply = await hal.call("mm.cancel")
        self.assertEqual(reply, {"ticket": queued["ticket"], "queue": "dungeon5"})
        self.flush()
        removed = tom.last("mm.removed")
        self.assertEqual((removed["reason"], removed["character_id"]), ("cancelled", hal.cid))
        self.assertEqual(hal.events("mm.removed"), [])
        self.assertIsNone((await tom.call("mm.status"))["ticket"])
        self.assertEqual(node.metric("mmoshard_mm_tickets_removed_total", queue="dungeon5",
                                     reason="cancelled"), 1.0)

    async def test_cancelWithoutTicket(self):
        """mm.cancel with no ticket is mm.not_queued."""
        node = await self.node()
        code, _ = await (await node.connect("Dan")).fails("mm.cancel")
        self.assertEqual(code, errors.NOT_QUEUED)
