"""Arena copies in-process on a Clock: team spawns, pvp between the teams only, the result reported once through IMatchResults and told, the copy closed; bad creates; no adoption."""

import copy

from twisted.internet.defer import fail, succeed
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from mmoshard.interfaces import IMatchResults
from mmoshard.store.errors import SQLUnavailable
from mmoshard.world.instances import errors
from mmoshard.world.instances.arena import (
    ALL_OUT, DEFEATED, REPORT_RETRY, RESULT, TIME, ArenaMatch, matchKey,
)
from mmoshard.world.instances.errors import InstanceError
from mmoshard.world.instances.loading import InstanceDataError, parseInstances
from mmoshard.world.instances.test.test_loading import context, shipped
from mmoshard.world.instances.host import hostKey
from mmoshard.world.instances.test.test_entry import Client, EntryTestCase, FakeParties
from mmoshard.world.test.harness import WorldHarness

ARENA = "arena"
# The shipped arena (etc/instances.toml): its teams' spawn points and timings.
SPAWNS = ((10.0, 40.0), (70.0, 40.0))
START_GRACE, MATCH, CLOSE = 30.0, 300.0, 15.0


@implementer(IMatchResults)
class FakeMatchResults:
    """IMatchResults recording each report; each character's new rating is 1500 + 10 (win) or - 10; C{failures} first reports fail."""

    def __init__(self, failures=0):
        self.reports = []
        self.failures = failures

    def report(self, matchId, queue, teams, winner):
        self.reports.append((matchId, queue, teams, winner))
        if self.failures:
            self.failures -= 1
            return fail(SQLUnavailable("down for the test"))
        return succeed({cid: 1500.0 + (0 if winner is None else 10 if i == winner else -10)
                        for i, team in enumerate(teams) for cid in team})

    def ratings(self, queue, characterIds):
        return succeed({cid: 1500.0 for cid in characterIds})


class ArenaTestCase(EntryTestCase):
    results = None

    def setUp(self):
        self.parties = FakeParties()
        self.h = WorldHarness(self, parties=self.parties, matchResults=self.results)
        self.sql = self.h.sql

    def match(self, perTeam=2, matchId="arena2v2/m1"):
        """@return: (placement, teams, {cid: Client}) of a new arena match, nobody inside yet."""
        cids = [self.character(a) for a in range(1, 2 * perTeam + 1)]
        teams = [cids[:perTeam], cids[perTeam:]]
        placement = self.successResultOf(self.h.world.instances.create(
            ARENA, cids, teams=teams, matchId=matchId))
        clients = {cid: self.login(account, cid) for account, cid in enumerate(cids, 1)}
        return placement, teams, clients

    def enterAll(self, placement, clients):
        for cid, c in clients.items():
            self.entered(c, ticket=placement.tickets[cid])

    def arena(self, placement):
        return self.h.world.instances.host.instances[placement.instance_id].arena

    def entity(self, cid):
        return self.h.world.roster.byCharacter[cid].entity

    def kill(self, placement, cid):
        zone = self.arena(placement).instance.zone
        zone.combat.damage(None, zone.entities[cid], 10 ** 7)

    def told(self, client):
        """@return: (and forget) the world.arena.result events C{client} got."""
        return client.events(RESULT)


class PlayTests(ArenaTestCase):
    def setUp(self):
        self.results = FakeMatchResults()
        super().setUp()

    def test_fake_results_provider(self):
        """The test's IMatchResults fake provides the interface."""
        verifyObject(IMatchResults, self.results)

    def test_teams_start_apart_and_fight_each_other_only(self):
        """Each team enters at its own spawn point; players may attack the other team, not their own, and heal only their own."""
        placement, (t0, t1), clients = self.match()
        self.enterAll(placement, clients)
        for team, (x, z) in zip((t0, t1), SPAWNS):
            for cid in team:
                self.assertEqual((self.entity(cid).x, self.entity(cid).z), (x, z))
        combat = self.arena(placement).instance.zone.combat
        a, b, c = self.entity(t0[0]), self.entity(t0[1]), self.entity(t1[0])
        self.assertTrue(combat.isEnemy(a, c))
        self.assertFalse(combat.isEnemy(a, b))
        self.assertTrue(combat.isAlly(a, b))
        self.assertFalse(combat.isAlly(a, c))

    def test_team_all_dead_loses(self):
        """When one team is all dead the other wins: reported once, told to every player with the ratings, the copy closes after close_delay."""
        placement, (t0, t1), clients = self.match()
        self.enterAll(placement, clients)
        self.kill(placement, t1[0])
        self.h.advance(1.0)
        self.assertEqual(self.results.reports, [])
        # The fallen has no side any more: nobody fights it, it fights nobody.
        combat = self.arena(placement).instance.zone.combat
        self.assertFalse(combat.isEnemy(self.entity(t0[0]), self.entity(t1[0])))
        self.kill(placement, t1[1])
        self.assertEqual(self.results.reports, [("arena2v2/m1", "arena2v2", [t0, t1], 0)])
        for cid, c in clients.items():
            [told] = self.told(c)
            self.assertEqual((told["match"], told["winner"], told["reason"], told["rated"],
                              told["team"]),
                             ("arena2v2/m1", 0, DEFEATED, True, 0 if cid in t0 else 1))
            self.assertEqual({r["character_id"]: r["rating"] for r in told["ratings"]},
                             {**{x: 1510.0 for x in t0}, **{x: 1490.0 for x in t1}})
        # The dead live again; nobody fights any more.
        self.assertFalse(self.entity(t1[1]).combat.dead)
        self.assertFalse(combat.isEnemy(self.entity(t0[0]), self.entity(t1[1])))
        self.h.advance(1.0, int(CLOSE) - 2)
        self.assertEqual(self.zoneOf(t0[0]), placement.zone)
        self.h.advance(1.0, 4)
        self.assertEqual({self.zoneOf(cid) for cid in clients}, {"greenvale"})
        self.assertEqual(len(self.results.reports), 1)

    def test_result_fields_documented(self):
        """world.arena.result carries exactly the fields docs/matchmaking.md lists."""
        from mmoshard.wire.test.docs import documentedFields

        placement, (t0, t1), clients = self.match(perTeam=1)
        self.enterAll(placement, clients)
        self.kill(placement, t0[0])
        [told] = self.told(clients[t0[0]])
        self.assertEqual(set(told) - {"t", "seq"}, documentedFields()[RESULT])

    def test_time_out_is_a_draw(self):
        """A match nobody won within match_duration is a draw."""
        placement, teams, clients = self.match(perTeam=1)
        self.enterAll(placement, clients)
        self.h.advance(1.0, int(MATCH) - 5)
        self.assertEqual(self.results.reports, [])
        self.h.advance(1.0, 6)
        self.assertEqual(self.results.reports, [("arena2v2/m1", "arena2v2", teams, None)])
        for c in clients.values():
            [told] = self.told(c)
            self.assertEqual((told["winner"], told["reason"]), (None, TIME))

    def test_absent_team_loses_after_the_start_grace(self):
        """A team none of whose members arrived within start_grace loses to the team that came."""
        placement, (t0, t1), clients = self.match(perTeam=1)
        self.entered(clients[t0[0]], ticket=placement.tickets[t0[0]])
        self.h.advance(1.0, int(START_GRACE) - 3)
        self.assertEqual(self.results.reports, [])
        self.h.advance(1.0, 4)
        self.assertEqual(self.results.reports, [("arena2v2/m1", "arena2v2", [t0, t1], 0)])

    def test_nobody_came_is_a_draw(self):
        """When no member of either team arrived within start_grace, the match is a draw."""
        placement, teams, clients = self.match(perTeam=1)
        self.h.advance(1.0, int(START_GRACE) + 1)
        self.assertEqual(self.results.reports, [("arena2v2/m1", "arena2v2", teams, None)])
        [told] = self.told(clients[teams[0][0]])
        self.assertEqual(told["reason"], ALL_OUT)

    def test_leaving_counts_as_out(self):
        """A member who leaves the copy is out: the last of a team leaving loses the match."""
        placement, (t0, t1), clients = self.match(perTeam=1)
        self.enterAll(placement, clients)
        self.h.advance(1.0)  # arrivals are seen each second
        self.assertEqual(self.results.reports, [])
        clients[t1[0]].request("world.instance.leave")
        self.h.advance(1.0, 2)
        self.assertEqual(self.results.reports, [("arena2v2/m1", "arena2v2", [t0, t1], 0)])

    def test_entering_by_template_is_refused(self):
        """world.instance.enter {template: "arena"} is refused: an arena is entered only with its match's ticket."""
        cid = self.character(1)
        c = self.login(1, cid)
        self.assertEqual(self.refused(c, template=ARENA)["code"], errors.BAD_TICKET)


class ReportTests(ArenaTestCase):
    def test_report_retried_then_told(self):
        """A report that fails is retried; the players are told once it is recorded."""
        self.h.world.matchResults = results = FakeMatchResults(failures=1)
        placement, (t0, t1), clients = self.match(perTeam=1)
        self.enterAll(placement, clients)
        self.kill(placement, t0[0])
        self.assertEqual(len(results.reports), 1)
        self.assertEqual(self.told(clients[t1[0]]), [])
        self.h.advance(REPORT_RETRY)
        self.assertEqual(len(results.reports), 2)
        [told] = self.told(clients[t1[0]])
        self.assertEqual((told["winner"], told["rated"]), (1, True))

    def test_without_results_provider(self):
        """Without an IMatchResults the result is still told (rated false, no ratings) and the copy closes."""
        self.h.world.matchResults = None
        placement, (t0, t1), clients = self.match(perTeam=1)
        self.enterAll(placement, clients)
        self.kill(placement, t0[0])
        [told] = self.told(clients[t0[0]])
        self.assertEqual((told["winner"], told["rated"], told["ratings"]), (1, False, []))
        self.h.advance(1.0, int(CLOSE) + 2)
        self.assertNotIn(placement.instance_id, self.h.world.instances.host.instances)


class CreateTests(ArenaTestCase):
    def test_bad_match_refused(self):
        """Creating an arena without two teams and a match id, or with a roster other than the teams, is instance.bad_match."""
        create = self.h.world.instances.create
        for kwargs in ({}, {"matchId": "arena2v2/x"}, {"teams": [[1], [2]]},
                       {"teams": [[1], [2], [3]], "matchId": "q/x"},
                       {"teams": [[1], []], "matchId": "q/x"},
                       {"teams": [[1, 2], [2]], "matchId": "q/x"}):
            f = self.failureResultOf(create(ARENA, [1, 2], **kwargs), InstanceError)
            self.assertEqual(f.value.code, errors.BAD_MATCH, kwargs)
        f = self.failureResultOf(create(ARENA, [1, 2, 3], teams=[[1], [2]], matchId="q/x"),
                                 InstanceError)
        self.assertEqual(f.value.code, errors.BAD_MATCH)

    def test_match_id_names_queue(self):
        """The queue of a match is its id's part before the first "/"; without one, none."""
        self.assertEqual(ArenaMatch("arena2v2/17", ((1,), (2,))).queue, "arena2v2")
        self.assertIsNone(ArenaMatch("17", ((1,), (2,))).queue)

    def test_dungeon_takes_a_match_id(self):
        """A matchmade dungeon (teams None, a match id) is created as any copy."""
        placement = self.successResultOf(self.h.world.instances.create(
            "deadmines", [1], matchId="dungeon5/m9"))
        self.assertEqual(placement.template, "deadmines")


class TwoNodeArenaTests(ArenaTestCase):
    def setUp(self):
        self.parties = FakeParties()
        self.results = FakeMatchResults()
        self.a = self.h = WorldHarness(self, "world-a", parties=self.parties, zones=["greenvale"],
                                       instances=["deadmines"], matchResults=self.results)
        self.b = self.a.peerOf("world-b", zones=["ashfall"], instances=[ARENA],
                               matchResults=self.results)
        self.sql = self.a.sql
        for h in (self.a, self.b):
            self.successResultOf(h.directory.beat())

    def test_enter_from_another_node_at_team_spawn(self):
        """A player on another node enters the arena with its ticket and lands at its team's spawn point."""
        a, b = self.a, self.b
        cids = [self.character(1), self.character(2)]
        creating = a.world.instances.create(ARENA, cids, teams=[[cids[0]], [cids[1]]],
                                            matchId="arena2v2/x")
        a.advance(0.01, 3)  # the request to world-b and its reply
        placement = self.successResultOf(creating)
        self.assertEqual(placement.node, "world-b")
        c = self.login(2, cids[1])
        self.entered(c, ticket=placement.tickets[cids[1]])
        [transfer] = c.events("world.transfer")
        there = Client(b, 2)
        reply = there.request("world.enter", character_id=cids[1], ticket=transfer["ticket"])
        self.assertEqual(reply["zone"]["id"], placement.zone)
        e = b.world.roster.byCharacter[cids[1]].entity
        self.assertEqual((e.x, e.z), SPAWNS[1])

    def test_arena_not_adopted(self):
        """An arena whose host is gone is not re-created elsewhere: it is closed, its match void."""
        a, b = self.a, self.b
        placement = self.successResultOf(b.world.instances.create(
            ARENA, [1, 2], teams=[[1], [2]], matchId="arena2v2/y"))
        iid = placement.instance_id
        self.successResultOf(b.volatile.delete(hostKey(iid)))
        a.world.instances.host.offered += (ARENA,)
        f = self.failureResultOf(a.world.instances.host.adopt(iid), InstanceError)
        self.assertEqual(f.value.code, errors.CLOSED)
        self.assertIsNotNone(self.sql.conn.execute(
            "SELECT closed_at FROM instances WHERE id = ?", (iid,)).fetchone()[0])
        self.assertIsNotNone(self.successResultOf(b.volatile.get(matchKey(iid))))
        self.assertEqual(self.results.reports, [])


def arenaDoc(**changes):
    """@return: an instances document of one small arena, its template's keys updated with C{changes}."""
    template = {
        "name": "Pit", "kind": "arena", "party_size": 4, "max_duration": 600.0,
        "match_duration": 120.0, "start_grace": 10.0, "close_delay": 5.0,
        "exit": [0.0, 0.0, 2.0, 2.0],
        "layout": {"size": [40.0, 40.0], "spawns": [[5.0, 0.0, 20.0], [35.0, 0.0, 20.0]]},
    }
    template.update(changes)
    return {"instances": {"pit": template}}


class ArenaLoadingTests(TestCase):
    def problems(self, doc):
        with self.assertRaises(InstanceDataError) as e:
            parseInstances(doc, *context(), source="i.toml")
        return e.exception.problems

    def test_shipped_arena(self):
        """etc/instances.toml ships the arena of the arena2v2 queue: two spawn points, no bosses, trash or entrance."""
        arena = shipped()[ARENA]
        self.assertTrue(arena.arena)
        self.assertEqual([(x, z) for x, _, z in arena.layout.spawns[:2]], list(SPAWNS))
        self.assertEqual((arena.bosses, arena.packs, arena.entrance), ((), (), None))
        self.assertEqual((arena.start_grace, arena.match_duration, arena.close_delay),
                         (START_GRACE, MATCH, CLOSE))

    def test_valid_arena(self):
        """A small arena with its own timings loads with them."""
        spec = parseInstances(arenaDoc(), *context(), source="i.toml")["pit"]
        self.assertEqual((spec.kind, spec.match_duration, spec.start_grace, spec.close_delay),
                         ("arena", 120.0, 10.0, 5.0))

    def test_arena_mistakes(self):
        """An arena with bosses, trash, an entrance, one spawn point or a match outlasting the copy is refused, every problem at once."""
        doc = arenaDoc(max_duration=100.0,
                       bosses=copy.deepcopy(
                           {"b": [{"id": "x", "npc": "grey_wolf", "at": [20.0, 30.0],
                                   "phases": [{"below": 1.0}]}]})["b"],
                       packs=[{"members": ["grey_wolf"], "at": [20.0, 30.0]}],
                       entrance={"zone": "greenvale", "rect": [500.0, 900.0, 508.0, 908.0],
                                 "arrive": [504.0, 0.0, 890.0]})
        doc["instances"]["pit"]["layout"]["spawns"] = [[5.0, 0.0, 20.0]]
        problems = self.problems(doc)
        for fragment in ("instances.pit.bosses: an arena has no bosses",
                         "instances.pit.packs: an arena has no trash",
                         "instances.pit.entrance: an arena is entered only",
                         "instances.pit.layout.spawns: an arena needs two spawn points",
                         "instances.pit.max_duration: must exceed match_duration + close_delay"):
            self.assertTrue(any(p.startswith(fragment) for p in problems), (fragment, problems))

    def test_arena_keys_only_for_arenas(self):
        """match_duration, start_grace and close_delay on a dungeon are refused."""
        doc = arenaDoc(kind="dungeon", bosses=[{"id": "x", "npc": "grey_wolf", "at": [20.0, 30.0],
                                                 "phases": [{"below": 1.0}]}])
        problems = self.problems(doc)
        for key in ("match_duration", "start_grace", "close_delay"):
            self.assertIn(f"instances.pit.{key}: only an arena (kind = \"arena\") takes it", problems)
