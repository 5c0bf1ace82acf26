// Resuming on another node of the role against a scripted server: alternates, server.shutdown
// with resume: true, and the moved flag (client.moved, onMoved).

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect } from "../src/index.js";
import { FakeServer } from "./fake.mjs";
import { waitFor } from "./node.mjs";

const A = "ws://a/";
const B = "ws://b/";
const C = "ws://c/";

async function client(server, options = {}) {
  const events = [];
  const moved = [];
  const c = await connect(A, "tok", {
    WebSocket: server.WebSocket, alternates: [B, C],
    onEvent: (type, message) => events.push(message), onMoved: (reply) => moved.push(reply), ...options,
  });
  c.events = events;
  c.movedReplies = moved;
  return c;
}

const of = (events, type) => events.filter((e) => e.t === type);
const urls = (server) => server.sockets.map((s) => s.url);

test("alternates: the directory's entries or addresses, the node first, no duplicates", async () => {
  const server = new FakeServer();
  const c = await client(server, { alternates: [{ node_id: "b", websocket: B }, A, C, { node_id: "t" }] });
  assert.deepEqual(c.urls, [A, B, C]);
  assert.equal(c.url, A);
  await c.close();
});

test("a plain drop resumes on the same node first: not moved, no client.moved", async () => {
  const server = new FakeServer();
  const c = await client(server);
  server.last.drop();
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.deepEqual(urls(server), [A, A]);
  assert.equal(c.url, A);
  assert.equal(c.moves, 0);
  assert.deepEqual(c.movedReplies, []);
  assert.deepEqual(of(c.events, "client.moved"), []);
  assert.equal(of(c.events, "client.resumed")[0].moved, false);
  await c.close();
});

test("a node that cannot be reached: the resume goes on on the next alternate, moved, events once", async () => {
  const server = new FakeServer();
  const c = await client(server);
  for (const seq of [1, 2]) server.last.push({ t: "chat.whisper", seq, text: `m${seq}` });
  server.replay = [2, 3].map((seq) => ({ t: "chat.whisper", seq, text: `m${seq}` }));
  server.down.add(A);
  server.last.drop();
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.deepEqual(urls(server), [A, A, B]);
  assert.equal(c.url, B);
  assert.deepEqual(server.last.sent[0], { t: "resume", id: 2, resume_token: "r1", last_seq: 2 });
  assert.deepEqual(of(c.events, "chat.whisper").map((e) => e.seq), [1, 2, 3]);
  assert.equal(c.moves, 1);
  assert.equal(c.movedReplies.length, 1);
  assert.equal(c.movedReplies[0].moved, true);
  const [moved] = of(c.events, "client.moved");
  assert.deepEqual([moved.url, moved.moves, moved.resumed.t], [B, 1, "resumed"]);
  // client.resumed comes first, then client.moved, then the replayed events.
  const order = c.events.map((e) => e.t).filter((t) => t.startsWith("client.r") || t === "client.moved"
    || t === "chat.whisper");
  assert.deepEqual(order, ["chat.whisper", "chat.whisper", "client.resumed", "client.moved", "chat.whisper"]);
  assert.equal(of(c.events, "client.resumed")[0].moved, true);
  // Requests go to the new node.
  assert.equal((await c.request("echo", { n: 1 })).n, 1);
  assert.equal(server.last.url, B);
  await c.close();
  assert.equal(await c.ended, "closed");
});

test("server.shutdown with resume: true resumes at once on the next alternate; the session goes on", async () => {
  const server = new FakeServer();
  const c = await client(server);
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true });
  server.last.drop(1001);
  await waitFor(() => c.resumes === 1, 5, "the resume");
  // The stopping node is not tried again.
  assert.deepEqual(urls(server), [A, B]);
  assert.equal(c.endReason, null);
  assert.equal(c.connected, true);
  assert.equal(c.moves, 1);
  assert.ok(of(c.events, "server.shutdown").length === 1);
  // The next stop moves it on again, and the rotation wraps around.
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true });
  server.last.drop(1001);
  await waitFor(() => c.resumes === 2, 5, "the second resume");
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true });
  server.last.drop(1001);
  await waitFor(() => c.resumes === 3, 5, "the third resume");
  assert.deepEqual(urls(server), [A, B, C, A]);
  assert.equal(c.moves, 3);
  await c.close();
});

test("requests across a stop: what the notice does not name unanswered, and what is asked meanwhile, go to the next node", async () => {
  const server = new FakeServer();
  const c = await client(server);
  const stopping = server.last;
  const taken = c.request("slow", { n: 1 });
  const notTaken = c.request("slow", { n: 2 });
  const outcomeUnknown = c.request("slow", { n: 3 });
  const [id1, id2, id3] = stopping.sent.filter((m) => m.t === "slow").map((m) => m.id);
  stopping.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true,
    pending: [id2], unanswered: [id3] });
  const meanwhile = c.request("echo", { n: 4 });
  assert.deepEqual(stopping.types().filter((t) => t === "echo"), [], "nothing goes to the stopping node");
  server.slowAnswered = true;
  stopping.drop(1001);
  await assert.rejects(outcomeUnknown, (e) => e.code === "client.connection_lost");
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.deepEqual([(await taken).n, (await notTaken).n, (await meanwhile).n], [1, 2, 4]);
  const resent = server.last.sent.filter((m) => m.t !== "resume");
  assert.equal(server.last.url, B);
  assert.deepEqual(resent.map((m) => [m.t, m.id, m.n]), [["slow", id1, 1], ["slow", id2, 2], ["echo", id3 + 1, 4]]);
  await c.close();
});

test("a stop notice without pending (an older node): requests without an answer fail with the link", async () => {
  const server = new FakeServer();
  const c = await client(server);
  const lost = c.request("slow", { n: 1 });
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true });
  server.last.drop(1001);
  await assert.rejects(lost, (e) => e.code === "client.connection_lost");
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.deepEqual(server.last.sent.map((m) => m.t), ["resume"]);
  await c.close();
});

test("server.shutdown with resume: true and no alternates resumes on the same address", async () => {
  const server = new FakeServer();
  const c = await client(server, { alternates: undefined });
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true });
  server.down.add(A);
  server.last.drop(1001);
  await waitFor(() => server.sockets.length >= 3, 5, "retries");
  server.down.delete(A); // the node is back
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.ok(urls(server).every((u) => u === A));
  assert.equal(c.endReason, null);
  await c.close();
});

test("server.shutdown with resume: true and autoResume off ends the session disconnected", async () => {
  const server = new FakeServer();
  const c = await client(server, { autoResume: false });
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5, resume: true });
  server.last.drop(1001);
  assert.equal(await c.ended, "disconnected");
  assert.deepEqual(urls(server), [A]);
});

test("no node of the role reachable within the grace: every one was tried, resume_failed", async () => {
  const server = new FakeServer({ grace: 0.5 });
  const c = await client(server);
  server.refuse = true;
  server.last.drop();
  assert.equal(await c.ended, "resume_failed");
  const tried = new Set(urls(server).slice(1));
  assert.deepEqual([...tried].sort(), [A, B, C]);
});
