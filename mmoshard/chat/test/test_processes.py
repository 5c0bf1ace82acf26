"""Two real chat processes (twistd) on MariaDB and Redis, clients on each; a kill -9 crash."""

import os
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.chat.test.backends import NAMES, insertCharacters
from mmoshard.testing import (
    TwistdProcess,
    freePort,
    sharedStores,
    writeConfig,
)

TOKEN_KEY = "chat-e2e-test-key-0123456789abcdef"
async def until(predicate, timeout=10.0, what="condition"):
    deadline = reactor.seconds() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s")
        await deferLater(reactor, 0.02, lambda: None)


class Player:
    """A real session client speaking as one character, collecting its events."""

    def __init__(self, client, cid, name):
        self.client = client
        self.cid = cid
        self.name = name
        self.events = []
        client.onEvent = self.events.append

    def of(self, type):
        return [e for e in self.events if e["t"] == type]

    def request(self, type, **body):
        return self.client.request(type, **body)

    async def fails(self, type, **body):
        from mmoshard.wire.client import RequestError

        try:
            await self.client.request(type, **body)
        except RequestError as e:
            return e.code
        raise AssertionError(f"{type} did not fail")


class ChatProcessesTests(TestCase):
    timeout = 120

    async def setUpNode(self):
        async def addCharacters(store):
            self.chars = await store.runInteraction(insertCharacters, NAMES, time.time())

        self.mysqlURL, self.redisURL, self.prefix = await sharedStores(
            self, reactor, addCharacters
        )

    def spawn(self, nodeId):
        admin, tcp = freePort(), freePort()
        sections = {
            "node": {"id": nodeId, "roles": ["chat"], "var_dir": os.path.abspath(self.mktemp())},
            "sql": {"url": self.mysqlURL},
            "volatile": {"url": self.redisURL, "prefix": self.prefix},
            "secrets": {"token_key": TOKEN_KEY},
            "listen": {"admin": f"tcp:{admin}:interface=127.0.0.1",
                       "tcp": f"tcp:{tcp}:interface=127.0.0.1", "websocket": "",
                       "http": ""},
            "session": {"resume_grace": 5.0},
            "chat": {"presence_ttl": 3.0},
        }
        path = writeConfig(os.path.abspath(self.mktemp()) + ".toml", sections)
        proc = TwistdProcess(reactor, path, admin).start()
        proc.tcpPort = tcp
        self.addCleanup(proc.kill)
        return proc

    async def player(self, proc, name, **kwargs):
        from mmoshard.tokens import issueAccessToken, newLoginId
        from mmoshard.wire.client import connect

        cid, accountId, display = self.chars[name.lower()]
        token = issueAccessToken(TOKEN_KEY, accountId, newLoginId(), 600, time.time())
        client = await connect(reactor, f"127.0.0.1:{proc.tcpPort}", token, **kwargs)
        self.addCleanup(self._close, client)
        player = Player(client, cid, display)
        await player.request("chat.hello", character_id=cid)
        return player

    @staticmethod
    async def _close(client):
        try:
            await client.close()
        except Exception:
            pass

    async def test_cross_process_suite(self):
        """Two real chat processes: friends, presence, whispers, a party, a channel, a link-dead resume with replay, and metrics."""
        await self.setUpNode()
        one, two = self.spawn("chat-1"), self.spawn("chat-2")
        await one.waitReady()
        await two.waitReady()
        alice = await self.player(one, "alice")
        carol = await self.player(one, "carol")
        bob = await self.player(two, "bob", autoResume=False)
        dave = await self.player(two, "dave")

        # Friends and presence across processes.
        await alice.request("chat.friend.request", name="bob")
        await until(lambda: bob.of("chat.friend.requested"), what="friend request")
        await bob.request("chat.friend.accept", character_id=alice.cid)
        await until(lambda: alice.of("chat.friend.added"), what="friend added")
        await bob.request("chat.status", status="busy", text="raiding")
        await until(lambda: [e for e in alice.of("chat.presence") if e["status"] == "busy"],
                    what="presence event")

        # Whispers by case-insensitive name, acknowledged once delivered.
        reply = await alice.request("chat.whisper", to="BOB", text="psst")
        self.assertTrue(reply["delivered"])
        await until(lambda: bob.of("chat.whisper"), what="whisper")
        await dave.request("chat.whisper", to="carol", text="hi from two")
        await until(lambda: carol.of("chat.whisper"), what="whisper back")
        self.assertEqual(await alice.fails("chat.whisper", to="Eve", text="?"), "chat.offline")

        # A party spread over both processes.
        invite = await alice.request("chat.party.invite", name="Bob")
        await until(lambda: bob.of("chat.party.invited"), what="invite")
        await bob.request("chat.party.accept", party_id=invite["party_id"])
        await alice.request("chat.party.invite", name="dave")
        await until(lambda: dave.of("chat.party.invited"), what="invite 2")
        await dave.request("chat.party.accept", party_id=invite["party_id"])
        await bob.request("chat.party.say", text="pull in 3")
        await until(lambda: alice.of("chat.party.message") and dave.of("chat.party.message"),
                    what="party chat")

        # A channel with members on both processes.
        for p in (alice, dave, carol):
            await p.request("chat.channel.join", channel="world")
        await carol.request("chat.channel.say", channel="world", text="wts sword")
        await until(lambda: dave.of("chat.channel.message") and alice.of("chat.channel.message"),
                    what="channel message")

        # Bob's link drops: Alice sees link-dead, her whisper is kept for him
        # and replayed when he resumes.
        bob.client.drop()
        await until(lambda: [e for e in alice.of("chat.presence") if e["state"] == "linkdead"],
                    what="link-dead presence")
        await alice.request("chat.whisper", to="bob", text="while you were away")
        await alice.request("chat.party.say", text="party while away")
        before = len(bob.events)
        await bob.client._resume()
        await until(lambda: [e for e in bob.events[before:]
                             if e.get("text") == "while you were away"], what="replay")
        await until(lambda: [e for e in bob.events[before:]
                             if e.get("text") == "party while away"], what="party replay")
        await until(lambda: alice.of("chat.presence")[-1]["state"] == "online",
                    what="online again")

        # Metrics of the process counting cross-process traffic.
        code, body = await one.get("/metrics")
        text = body.decode()
        self.assertIn("mmoshard_chat_cross_process_publishes_total", text)
        self.assertIn('mmoshard_chat_deliveries_total{kind="whisper"}', text)
        self.assertIn("mmoshard_chat_online_players 2.0", text)

        self.assertEqual(await one.stop(), 0, one.output.decode())
        self.assertEqual(await two.stop(), 0, two.output.decode())

    async def test_crashed_process_players_go_offline(self):
        """After a kill -9 of one process, routes to it fail at once and its players are offline within the TTL."""
        await self.setUpNode()
        one, two = self.spawn("chat-1"), self.spawn("chat-2")
        await one.waitReady()
        await two.waitReady()
        alice = await self.player(one, "alice")
        bob = await self.player(two, "bob", autoResume=False)
        await alice.request("chat.friend.request", name="bob")
        await until(lambda: bob.of("chat.friend.requested"), what="friend request")
        await bob.request("chat.friend.accept", character_id=alice.cid)
        listing = await alice.request("chat.friend.list")
        self.assertEqual(listing["friends"][0]["state"], "online")
        two.kill()  # SIGKILL: no clean-up at all
        await two.ended
        # Routes to the dead process fail at once; the entry expires within the TTL.
        self.assertEqual(await alice.fails("chat.whisper", to="bob", text="?"), "chat.offline")
        started = reactor.seconds()

        async def offline():
            listing = await alice.request("chat.friend.list")
            return listing["friends"][0]["state"] == "offline"

        while not await offline():
            self.assertLess(reactor.seconds() - started, 3.5, "presence outlived its TTL")
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(await one.stop(), 0, one.output.decode())
