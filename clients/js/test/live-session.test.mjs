// The session protocol and REST conformance cases against a real twistd all-in-one node
// (the Python client's: mmoshard/wire/test/test_endtoend.py and the WebSocket transport tests).

import assert from "node:assert/strict";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import {
  RequestError, SessionClient, characters, classes, connect, createCharacter, encodeMessage, decodeMessage, login,
  logout, me, refresh, register,
} from "../src/index.js";
import { BUNDLE } from "../build.mjs";
import {
  CLIENT, PASSWORD, QUICK_SESSION, WebSocketImpl, letters, newPlayer, refusal, sharedNode, sleep, waitFor,
} from "./node.mjs";

let node;
sharedNode(QUICK_SESSION, (started) => { node = started; });

async function session(player, options = {}) {
  return connect(node.ws, player.tokens.access_token, { ...CLIENT, ...options });
}

/** A player with a session that said chat.hello as its character. */
async function chatting(options = {}) {
  const player = await newPlayer(node);
  const client = await session(player, options);
  await client.request("chat.hello", { character_id: player.character.id });
  return { ...player, client };
}

test("REST: register, log in, refresh, the account, classes, characters, log out", async () => {
  const username = `rest_${letters(8)}`;
  const account = await register(node.http, username, PASSWORD, `${username}@example.com`);
  assert.equal(account.username, username);
  let error = await refusal(register(node.http, username, PASSWORD));
  assert.ok(error instanceof RequestError);
  assert.deepEqual([error.code, error.status], ["account.username_taken", 409]);
  error = await refusal(login(node.http, username, "wrong-password-123"));
  assert.deepEqual([error.code, error.status], ["auth.invalid_credentials", 401]);
  const tokens = await login(node.http, username, PASSWORD);
  assert.equal(tokens.account_id, account.account_id);
  assert.equal(tokens.directory.world[0].websocket, node.ws);
  assert.equal((await me(node.http, tokens.access_token)).username, username);
  const renewed = await refresh(node.http, tokens.refresh_token);
  assert.notEqual(renewed.refresh_token, tokens.refresh_token);
  assert.ok((await classes(node.http)).classes.some((c) => c.id === "warrior"));
  error = await refusal(createCharacter(node.http, renewed.access_token, { name: "Jx", cls: "nobody" }));
  assert.equal(error.code, "request.invalid");
  assert.ok(error.fields.name && error.fields.class, JSON.stringify(error.fields));
  const made = await createCharacter(node.http, renewed.access_token, { name: `R${letters(8)}`, cls: "mage" });
  assert.deepEqual((await characters(node.http, renewed.access_token)).characters.map((c) => c.id), [made.id]);
  assert.ok((await logout(node.http, renewed.access_token)).ended);
  error = await refusal(me(node.http, renewed.access_token));
  assert.deepEqual([error.code, error.status], ["auth.invalid_token", 401]);
});

test("handshake errors: a bad token and a build below the minimum reject connect and end the session", async () => {
  const bad = new SessionClient(node.ws, "garbage", CLIENT);
  let error = await refusal(bad.connect());
  assert.equal(error.code, "auth.invalid_token");
  assert.equal(await bad.ended, "auth.invalid_token");
  const player = await newPlayer(node);
  const old = new SessionClient(node.ws, player.tokens.access_token, { ...CLIENT, clientVersion: "1.0.0" });
  error = await refusal(old.connect());
  assert.equal(error.code, "version.update_required");
  assert.match(error.message, /1\.10\.0/);
  assert.equal(await old.ended, "version.update_required");
  // A server that is not there: the link cannot be opened.
  error = await refusal(connect("ws://127.0.0.1:1/", player.tokens.access_token, CLIENT));
  assert.equal(error.code, "client.connection_lost");
});

test("requests by id get replies or typed errors; whispers arrive as numbered events", async () => {
  const ann = await chatting();
  const bob = await chatting();
  assert.equal(ann.client.accountId, ann.tokens.account_id);
  const pong = await ann.client.request("ping", { n: 5 });
  assert.deepEqual([pong.t, pong.n], ["pong", 5]);
  let error = await refusal(ann.client.request("test.nothing"));
  assert.equal(error.code, "protocol.unknown_type");
  error = await refusal(ann.client.request("chat.whisper", { to: 12 }));
  assert.match(error.code, /bad_request$/);
  error = await refusal(ann.client.request("chat.whisper", { to: "nobody_here", text: "hi" }));
  assert.equal(error.code, "chat.offline");
  const heard = [];
  bob.client.on("chat.whisper", (m) => heard.push(m));
  const next = bob.client.nextEvent("chat.whisper", 5);
  const reply = await ann.client.request("chat.whisper", { to: bob.character.name, text: "héllo" });
  assert.equal(reply.delivered, true);
  const event = await next;
  assert.deepEqual([event.text, event.from_name], ["héllo", ann.character.name]);
  assert.equal(typeof event.seq, "number");
  assert.equal(heard.length, 1);
  await ann.client.close();
  assert.equal(await ann.client.ended, "closed");
  await bob.client.close();
});

test("heartbeats: the client measures rtt, and one that only answers pings is never timed out", async () => {
  const player = await newPlayer(node);
  const pinging = await session(player);
  await waitFor(() => pinging.rtt !== null, 5, "an rtt");
  assert.ok(pinging.rtt >= 0 && pinging.rtt < 2);
  await pinging.close();
  // Silent but for its pongs, for longer than the server's heartbeat_timeout (3 s).
  const quiet = await session(player, { heartbeat: false });
  await sleep(4000);
  assert.equal(quiet.connected, true);
  assert.equal(quiet.resumes, 0);
  assert.equal(quiet.rtt, null);
  assert.equal((await quiet.request("ping", { n: 1 })).n, 1);
  await quiet.close();
});

test("a dropped link resumes on its own within the grace; each event arrives once, in order", async () => {
  const ann = await chatting();
  const bob = await chatting();
  const texts = [];
  const seqs = [];
  bob.client.on("chat.whisper", (m) => { texts.push(m.text); seqs.push(m.seq); });
  const resumed = bob.client.nextEvent("client.resumed", 15);
  const sessionId = bob.client.sessionId;
  await ann.client.request("chat.whisper", { to: bob.character.name, text: "before" });
  await waitFor(() => texts.length === 1, 5, "the first whisper");
  // Bob's resumes fail until its address is back: the whispers meanwhile
  // wait in his link-dead session and are replayed.
  const url = bob.client.url;
  bob.client.url = "ws://127.0.0.1:1/";
  bob.client.drop();
  for (const n of [1, 2, 3]) {
    const reply = await ann.client.request("chat.whisper", { to: bob.character.name, text: `gap ${n}` });
    assert.equal(reply.delivered, true);
  }
  assert.equal(bob.client.resumes, 0);
  bob.client.url = url;
  assert.equal((await resumed).replayed, 3);
  await ann.client.request("chat.whisper", { to: bob.character.name, text: "after" });
  await waitFor(() => texts.length >= 5, 5, "five whispers");
  await sleep(200);
  assert.deepEqual(texts, ["before", "gap 1", "gap 2", "gap 3", "after"]);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(new Set(seqs).size, 5);
  assert.equal(bob.client.resumes, 1);
  assert.equal(bob.client.sessionId, sessionId);
  assert.equal(bob.client.endReason, null);
  await ann.client.close();
  await bob.client.close();
});

test("a link gone silent (the node frozen) is dropped after three heartbeats and resumed", async () => {
  const player = await newPlayer(node);
  const client = await session(player, { heartbeat: 0.3 });
  const lost = client.nextEvent("client.link_lost", 10);
  node.pause();
  try {
    await lost;
  } finally {
    node.resume();
  }
  await waitFor(() => client.resumes === 1 && client.connected, 10, "the resume");
  assert.equal((await client.request("ping", { n: 2 })).n, 2);
  await client.close();
});

test("oversize frames: refused by the client, and one forced through closes the link, not the session", async () => {
  const player = await newPlayer(node);
  const client = await session(player);
  assert.equal(client.maxFrame, 65536);
  const big = { n: "x".repeat(70000) };
  let error = await refusal(client.request("ping", big));
  assert.equal(error.code, "client.frame_too_large");
  assert.equal(client.resumes, 0);
  // Past the client's own check, the server drops the link on the frame header.
  client.maxFrame = 1 << 20;
  error = await refusal(client.request("ping", big));
  assert.equal(error.code, "client.connection_lost");
  await waitFor(() => client.resumes === 1 && client.connected, 10, "the resume");
  assert.equal((await client.request("ping", { n: 3 })).n, 3);
  await client.close();
});

test("a text message gets protocol.text_frame and a close with code 4000", async () => {
  const player = await newPlayer(node);
  const ws = new WebSocketImpl(node.ws, ["mmoshard.v1"]);
  ws.binaryType = "arraybuffer";
  const received = [];
  const closed = new Promise((resolve) => { ws.onclose = (e) => resolve(e.code); });
  ws.onmessage = (e) => received.push(decodeMessage(e.data));
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  ws.send(encodeMessage({ t: "hello", id: 1, token: player.tokens.access_token, ...{
    client_version: "1.10.0", platform: "web" } }));
  await waitFor(() => received.length === 1, 5, "the welcome");
  ws.send("{\"t\": \"ping\"}");
  assert.equal(await closed, 4000);
  assert.deepEqual(received.map((m) => m.t === "error" ? m.code : m.t), ["welcome", "protocol.text_frame"]);
});

test("a new login ends the account's session with session.replaced; logout ends it with auth.revoked", async () => {
  const player = await newPlayer(node);
  const first = await session(player);
  const again = await login(node.http, player.username, PASSWORD);
  const second = await connect(node.ws, again.access_token, CLIENT);
  assert.equal(await first.ended, "session.replaced");
  await logout(node.http, again.access_token);
  assert.equal(await second.ended, "auth.revoked");
});

test("the committed bundle is an ES module that speaks the protocol", async () => {
  // Node takes .mjs as a module whatever package.json says.
  const copy = join(node.dir, "mmoshard-client.mjs");
  await copyFile(BUNDLE, copy);
  const lib = await import(pathToFileURL(copy).href);
  const source = await import("../src/index.js");
  assert.deepEqual(Object.keys(lib).sort(), Object.keys(source).sort());
  const player = await newPlayer(node);
  const client = await lib.connect(node.ws, player.tokens.access_token, CLIENT);
  assert.equal((await client.request("ping", { n: 4 })).n, 4);
  const error = await refusal(client.request("test.nothing"));
  assert.ok(error instanceof lib.RequestError);
  await client.close();
  assert.equal(await client.ended, "closed");
});
