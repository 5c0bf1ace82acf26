// Resuming on another node against real processes: two auth+chat nodes on a shared MariaDB and
// Redis; the node holding a session stops (SIGTERM) and the client goes on on the other one.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, login } from "../src/index.js";
import { CLIENT, PASSWORD, assertNoTraceback, newPlayer, sharedStores, startNode, waitFor } from "./node.mjs";

const TOKEN_KEY = "js-moved-test-key-0123456789abcdef";

async function chatNode(stores, id) {
  return startNode({
    node: { id, roles: ["auth", "chat"] },
    sql: { url: stores.sql },
    volatile: { url: stores.volatile, prefix: stores.prefix },
    secrets: { token_key: TOKEN_KEY },
    session: { heartbeat: 0.5, heartbeat_timeout: 3.0, resume_grace: 20.0 },
  });
}

/** Every event of `client`, client.* ones included, in order. */
function record(client) {
  const events = [];
  client.on("*", (m) => events.push(m));
  return events;
}

test("SIGTERM of the holding node: the session resumes on the next node of the directory, moved, "
     + "chat goes on without chat.hello and the friend never sees it offline", async (t) => {
  const stores = await sharedStores();
  if (stores.unavailable) {
    t.skip(stores.unavailable);
    return;
  }
  t.after(() => stores.drop());
  const one = await chatNode(stores, `js-moved-1-${process.pid}`);
  let oneStopped = false;
  t.after(() => (oneStopped ? null : one.stop()));
  const two = await chatNode(stores, `js-moved-2-${process.pid}`);
  t.after(() => two.stop());

  const alice = await newPlayer(one);
  const bob = await newPlayer(two);
  // Both nodes are in the directory of a login (each stamps it when ready).
  const tokens = await waitFor(async () => {
    const answer = await login(one.http, alice.username, PASSWORD);
    return (answer.directory.chat || []).length === 2 ? answer : null;
  }, 15, "both chat nodes in the directory");
  const [first, ...others] = tokens.directory.chat;
  assert.deepEqual(new Set([first.websocket, others[0].websocket]), new Set([one.ws, two.ws]));

  // Alice on node one, with the directory's other chat nodes as alternates; Bob on node two.
  const moved = [];
  const a = await connect(one.ws, tokens.access_token, {
    ...CLIENT, alternates: tokens.directory.chat, onMoved: (reply) => moved.push(reply),
  });
  const aEvents = record(a);
  await a.request("chat.hello", { character_id: alice.character.id });
  const b = await connect(two.ws, bob.tokens.access_token, CLIENT);
  const bEvents = record(b);
  await b.request("chat.hello", { character_id: bob.character.id });
  await a.request("chat.friend.request", { name: bob.character.name });
  await waitFor(() => bEvents.some((e) => e.t === "chat.friend.requested"), 10, "the friend request");
  await b.request("chat.friend.accept", { character_id: alice.character.id });
  await waitFor(() => aEvents.some((e) => e.t === "chat.friend.added"), 10, "friends");

  // The deploy: node one stops and says the session may resume elsewhere.
  const seq = a.lastSeq;
  assert.equal(await one.stop(), 0, one.output());
  oneStopped = true;
  const shutdown = aEvents.find((e) => e.t === "server.shutdown");
  assert.ok(shutdown && shutdown.resume === true, JSON.stringify(shutdown));
  await waitFor(() => a.moves === 1 && a.connected, 15, "the move");
  assert.equal(a.url, two.ws);
  assert.equal(a.endReason, null);
  assert.equal(moved.length, 1);
  assert.equal(moved[0].moved, true);
  const resumed = aEvents.find((e) => e.t === "client.resumed");
  assert.equal(resumed.moved, true);
  const movedEvent = aEvents.find((e) => e.t === "client.moved");
  assert.equal(movedEvent.url, two.ws);
  assert.ok(a.lastSeq >= seq);

  // No chat.hello: Bob's whisper reaches Alice on node two, and hers reach him.
  const reply = await b.request("chat.whisper", { to: alice.character.name, text: "after the deploy" });
  assert.equal(reply.delivered, true);
  await waitFor(() => aEvents.some((e) => e.t === "chat.whisper" && e.text === "after the deploy"), 10,
    "Bob's whisper");
  await a.request("chat.whisper", { to: bob.character.name, text: "still here" });
  await waitFor(() => bEvents.some((e) => e.t === "chat.whisper" && e.text === "still here"), 10,
    "Alice's whisper");
  // Bob never saw her offline; his list has her online.
  const states = bEvents.filter((e) => e.t === "chat.presence" && e.character_id === alice.character.id)
    .map((e) => e.state);
  assert.ok(!states.includes("offline"), JSON.stringify(states));
  const listing = await b.request("chat.friend.list");
  assert.equal(listing.friends.find((f) => f.character_id === alice.character.id).state, "online");

  await a.close();
  await b.close();
  assert.equal(await a.ended, "closed");
  assertNoTraceback(two);
});
