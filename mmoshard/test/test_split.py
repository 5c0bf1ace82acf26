"""The shipped split topology (etc/split/*.toml) end to end: one real twistd per role on MariaDB + Redis, a real client holding world and chat sessions at once."""

import os
import tomllib
import uuid

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from mmoshard.testing import (
    TwistdProcess,
    checkoutRoot,
    freePort,
    sharedStores,
    writeConfig,
)
from mmoshard.wire import errors
from mmoshard.wire.client import RequestError, SessionClient, login

ROLES = ("auth", "version", "world", "chat")
TOKEN_KEY = "split-test-key-0123456789abcdef"
PASSWORD = "split topology password 7"


def shippedConfig(role):
    """@return: the parsed etc/split/<role>.toml as shipped."""
    with open(os.path.join(checkoutRoot(), "etc", "split", f"{role}.toml"), "rb") as f:
        return tomllib.load(f)


class SplitTopologyTests(TestCase):
    timeout = 180

    async def startTopology(self):
        """
        Start one process per etc/split/<role>.toml, as shipped except for what
        a test must change: the database, the Redis prefix, the token key, free
        ports and a private var directory.
        """
        mysqlURL, redisURL, prefix = await sharedStores(self, reactor)
        procs = {}
        for role in ROLES:
            sections = shippedConfig(role)
            self.assertEqual(sections["node"]["roles"], [role])
            admin = freePort()
            sections["node"]["var_dir"] = os.path.abspath(self.mktemp())
            sections["sql"]["url"] = mysqlURL
            sections["volatile"].update(url=redisURL, prefix=prefix)
            sections["secrets"]["token_key"] = TOKEN_KEY
            sections["listen"] = {
                "http": f"tcp:{freePort()}:interface=127.0.0.1",
                "tcp": f"tcp:{freePort()}:interface=127.0.0.1",
                "websocket": f"tcp:{freePort()}:interface=127.0.0.1",
                "admin": f"tcp:{admin}:interface=127.0.0.1",
            }
            path = writeConfig(self.mktemp() + f"-{role}.toml", sections)
            proc = TwistdProcess(reactor, path, admin).start()
            self.addCleanup(proc.kill)
            proc.http = "http://127.0.0.1:" + sections["listen"]["http"].split(":")[1]
            procs[role] = proc
        for proc in procs.values():
            await proc.waitReady()
        return procs

    async def rest(self, method, url, token=None, **body):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await treq.request(
            method, url, json=body or None, headers=headers, persistent=False, timeout=10
        )
        payload = await response.json()
        self.assertLess(response.code, 300, payload)
        return payload

    def session(self, address, token):
        """A connected-later client collecting its events; dropped at clean-up."""
        client = SessionClient(reactor, address, token, clientVersion="1.0.0")
        client.seen = []
        client.onEvent = client.seen.append
        self.addCleanup(client.drop)
        return client

    async def enterWhenFree(self, client, cid, attempts=50):
        """world.enter, retried while the character is still leaving another session."""
        for _ in range(attempts):
            try:
                return await client.request("world.enter", character_id=cid)
            except RequestError as e:
                if e.code != "world.character_busy":
                    raise
                await deferLater(reactor, 0.1, lambda: None)
        self.fail(f"character {cid} still busy")

    async def test_worldAndChatSessionsCoexist(self):
        """
        A client of the split topology opens its world session, enters, then opens
        its chat session and says hello, as the docs tell it to: the world session
        stays alive and chat.hello names the zone channel.  A login from another
        device then replaces both sessions.
        """
        procs = await self.startTopology()
        auth = procs["auth"].http
        username = "split_" + uuid.uuid4().hex[:8]
        await self.rest("POST", auth + "/v1/accounts", username=username, password=PASSWORD)
        first = await login(reactor, auth, username, PASSWORD)
        token = first["access_token"]
        directory = first["directory"]
        # The login lists where the other roles live (the client knows auth).
        self.assertEqual(
            {role: [p["node_id"] for p in directory.get(role, [])] for role in ROLES[1:]},
            {role: [shippedConfig(role)["node"]["id"]] for role in ROLES[1:]},
        )
        classes = await self.rest("GET", auth + "/v1/classes")
        character = await self.rest(
            "POST", auth + "/v1/characters", token,
            name="Splitter", **{"class": classes["classes"][0]["id"]},
        )
        cid = character["id"]

        world = self.session(directory["world"][0]["tcp"], token)
        await world.connect()
        entered = await world.request("world.enter", character_id=cid)
        self.assertEqual(entered["zone"]["id"], character["zone"])

        chat = self.session(directory["chat"][0]["tcp"], token)
        await chat.connect()
        hello = await chat.request("chat.hello", character_id=cid)
        self.assertEqual(hello.get("zone_channel"), f"zone:{character['zone']}")
        # The world session is still there and still answers.
        again = await world.request("world.enter", character_id=cid)
        self.assertEqual(again["character_id"], cid)
        self.assertFalse(world.ended.called)
        self.assertFalse(chat.ended.called)

        # Another device logs in (another login id) and opens a world session:
        # both sessions of the first device end, each on its own node.
        second = await login(reactor, auth, username, PASSWORD)
        self.assertNotEqual(second["session_id"], first["session_id"])
        other = self.session(directory["world"][0]["tcp"], second["access_token"])
        await other.connect()
        self.assertEqual(await world.ended, errors.REPLACED)
        self.assertEqual(await chat.ended, errors.REPLACED)
        self.assertFalse(other.ended.called)
        # The replaced world session let go of the character: the new device
        # enters with it once the logout save is done.
        reply = await self.enterWhenFree(other, cid)
        self.assertEqual(reply["character_id"], cid)
        for role in ROLES:
            self.assertEqual(await procs[role].stop("TERM"), 0, procs[role].output.decode())
