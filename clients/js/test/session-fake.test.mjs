// The client's state machine against a scripted server: dedup by seq, heartbeats, resume rules,
// frame limits, request errors, fatal errors and close.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestError, SessionClient, connect } from "../src/index.js";
import { FakeServer } from "./fake.mjs";
import { sleep, waitFor } from "./node.mjs";

async function client(server, options = {}) {
  const events = [];
  const c = await connect("ws://fake/", "tok", {
    WebSocket: server.WebSocket, clientVersion: "1.2.3", platform: "test",
    onEvent: (type, message) => events.push(message), ...options,
  });
  c.events = events;
  return c;
}

const seqs = (events) => events.filter((e) => e.seq !== undefined).map((e) => e.seq);

test("hello carries the token, build and platform; the welcome sets the session", async () => {
  const server = new FakeServer();
  const c = await client(server);
  const [hello] = server.last.sent;
  assert.deepEqual(hello, { t: "hello", id: 1, token: "tok", client_version: "1.2.3", platform: "test" });
  assert.deepEqual(server.last.protocols, ["mmoshard.v1"]);
  assert.equal(c.sessionId, "s1");
  assert.equal(c.accountId, 5);
  assert.equal(c.connected, true);
  await c.close();
});

test("replies resolve by id, errors reject with their code, the rest are events", async () => {
  const server = new FakeServer();
  const c = await client(server);
  const seen = [];
  const fn = (m) => seen.push(m.n);
  c.on("test.event", fn);
  const reply = await c.request("echo", { text: "hi" });
  assert.deepEqual(reply, { t: "echo", text: "hi", id: 2 });
  const failing = c.request("nothing");
  server.last.push({ t: "error", id: 3, code: "protocol.unknown_type", message: "no", retry_after: 2 });
  const error = await failing.then(() => null, (e) => e);
  assert.ok(error instanceof RequestError);
  assert.deepEqual([error.code, error.message, error.retryAfter], ["protocol.unknown_type", "no", 2]);
  const next = c.nextEvent("test.event");
  server.last.push({ t: "test.event", seq: 1, n: 1 });
  assert.equal((await next).n, 1);
  c.off("test.event", fn);
  server.last.push({ t: "test.event", seq: 2, n: 2 });
  assert.deepEqual(seen, [1]);
  assert.deepEqual(seqs(c.events), [1, 2]);
  await c.close();
});

test("a request answered server.busy is sent again after its retry_after, up to busyRetries times", async () => {
  const server = new FakeServer();
  const c = await client(server, { busyRetries: 2 });
  const socket = server.last;
  const sentOf = (t) => socket.sent.filter((m) => m.t === t);
  const busy = (m) => socket.push({ t: "error", id: m.id, code: "server.busy", message: "busy",
    retry_after: 0.02 });
  // Refused once, sent again with its body under a new id, then answered.
  const accepted = c.request("mm.accept", { match: "m1" });
  busy(sentOf("mm.accept")[0]);
  const again = await waitFor(() => sentOf("mm.accept")[1]);
  assert.equal(again.match, "m1");
  assert.notEqual(again.id, sentOf("mm.accept")[0].id);
  socket.push({ t: "mm.accept", id: again.id, accepted: 1 });
  assert.equal((await accepted).accepted, 1);
  // Refused three times: the third busy answer is the caller's.
  const queued = c.request("mm.queue", { queue: "dungeon5" });
  for (let n = 0; n < 3; n++) busy(await waitFor(() => sentOf("mm.queue")[n]));
  const error = await queued.then(() => null, (e) => e);
  assert.equal(error.code, "server.busy");
  assert.equal(sentOf("mm.queue").length, 3);
  // Another error is not sent again.
  const refused = c.request("mm.cancel");
  socket.push({ t: "error", id: sentOf("mm.cancel")[0].id, code: "mm.not_queued", message: "no" });
  assert.equal((await refused.then(() => null, (e) => e)).code, "mm.not_queued");
  await sleep(60);
  assert.equal(sentOf("mm.cancel").length, 1);
  // A session ending while a request waits to go again fails it with client.closed.
  const waiting = c.request("mm.status");
  socket.push({ t: "error", id: sentOf("mm.status")[0].id, code: "server.busy", message: "busy",
    retry_after: 5 });
  await sleep(20);
  await c.close();
  assert.equal((await waiting.then(() => null, (e) => e)).code, "client.closed");
  assert.equal(sentOf("mm.status").length, 1);
});

test("busyRetries: 0 hands server.busy to the caller at once", async () => {
  const server = new FakeServer();
  const c = await client(server, { busyRetries: 0 });
  const p = c.request("mm.queue", { queue: "dungeon5" });
  const [sent] = server.last.sent.filter((m) => m.t === "mm.queue");
  server.last.push({ t: "error", id: sent.id, code: "server.busy", message: "busy", retry_after: 0.01 });
  assert.equal((await p.then(() => null, (e) => e)).code, "server.busy");
  await c.close();
});

test("a resume sends the last seq, and replayed events already seen are dropped", async () => {
  const server = new FakeServer();
  const c = await client(server);
  for (const seq of [1, 2, 3]) server.last.push({ t: "chat.whisper", seq, text: `m${seq}` });
  // The server replays from seq 2: 2 and 3 arrived before the drop.
  server.replay = [2, 3, 4].map((seq) => ({ t: "chat.whisper", seq, text: `m${seq}` }));
  const first = server.last;
  first.drop();
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.equal(server.sockets.length, 2);
  const [resume] = server.last.sent;
  assert.deepEqual(resume, { t: "resume", id: 2, resume_token: "r1", last_seq: 3 });
  assert.deepEqual(seqs(c.events), [1, 2, 3, 4]);
  assert.equal(c.lastSeq, 4);
  assert.ok(c.events.some((e) => e.t === "client.link_lost"));
  assert.ok(c.events.some((e) => e.t === "client.resumed" && e.replayed === 3));
  // The next resume uses the rotated token.
  server.replay = [];
  server.last.drop();
  await waitFor(() => c.resumes === 2, 5, "the second resume");
  assert.equal(server.last.sent[0].resume_token, "r2");
  assert.equal(c.sessionId, "s1");
  await c.close();
});

test("requests in flight when the link drops fail with client.connection_lost", async () => {
  const server = new FakeServer();
  const c = await client(server);
  const pending = c.request("slow");
  server.last.drop();
  const error = await pending.then(() => null, (e) => e);
  assert.equal(error.code, "client.connection_lost");
  await waitFor(() => c.connected, 5, "the resume");
  await c.close();
});

test("server pings are answered with their nonce; the client's own pings measure rtt", async () => {
  const server = new FakeServer({ heartbeat: 0.05 });
  const c = await client(server);
  server.last.push({ t: "ping", n: 7 });
  assert.deepEqual(server.last.sent.at(-1), { t: "pong", n: 7 });
  // Answer the client's pings as the server does.
  const socket = server.last;
  const answer = server.handle.bind(server);
  server.handle = (s, m) => (m.t === "ping" ? s.push({ t: "pong", n: m.n }) : answer(s, m));
  await waitFor(() => c.rtt !== null, 5, "an rtt");
  assert.ok(c.rtt >= 0 && c.rtt < 1);
  assert.ok(socket.types().includes("ping"));
  assert.equal(c.resumes, 0);
  await c.close();
});

test("a link silent for three heartbeats is dropped and resumed", async () => {
  const server = new FakeServer({ heartbeat: 0.05 });
  const c = await client(server);
  const first = server.last;
  await waitFor(() => first.closedWith !== null, 5, "the drop");
  assert.equal(first.closedWith, 4001);
  assert.ok(first.types().filter((t) => t === "ping").length >= 2);
  await waitFor(() => c.resumes === 1, 5, "the resume");
  assert.equal(server.last.sent[0].t, "resume");
  await c.close();
});

test("heartbeat: false only answers pings and never drops a quiet link", async () => {
  const server = new FakeServer({ heartbeat: 0.02 });
  const c = await client(server, { heartbeat: false });
  await sleep(150);
  assert.deepEqual(server.last.types(), ["hello"]);
  assert.equal(server.sockets.length, 1);
  await c.close();
});

test("a message over the welcome's max_frame is refused before it is sent", async () => {
  const server = new FakeServer({ maxFrame: 100 });
  const c = await client(server);
  const error = await c.request("echo", { text: "x".repeat(200) }).then(() => null, (e) => e);
  assert.equal(error.code, "client.frame_too_large");
  assert.throws(() => c.send("echo", { text: "x".repeat(200) }), (e) => e.code === "client.frame_too_large");
  assert.deepEqual(server.last.types(), ["hello"]);
  assert.equal((await c.request("echo", { text: "small" })).text, "small");
  await c.close();
});

test("a fatal error ends the session with its code, without a resume", async () => {
  const server = new FakeServer();
  const c = await client(server);
  server.last.push({ t: "error", code: "session.replaced", message: "elsewhere" });
  server.last.drop(4000);
  assert.equal(await c.ended, "session.replaced");
  assert.equal(server.sockets.length, 1);
  const error = await c.request("echo").then(() => null, (e) => e);
  assert.equal(error.code, "client.closed");
  assert.equal(c.send("echo"), false);
});

test("server.shutdown ends the session with shutdown", async () => {
  const server = new FakeServer();
  const c = await client(server);
  server.last.push({ t: "server.shutdown", reason: "restart", retry_after: 5 });
  server.last.drop(1000);
  assert.equal(await c.ended, "shutdown");
  assert.ok(c.events.some((e) => e.t === "server.shutdown"));
  assert.equal(server.sockets.length, 1);
});

test("a refused resume ends the session with the server's code", async () => {
  const server = new FakeServer();
  const c = await client(server);
  server.resumeError = "session.resume_failed";
  server.last.drop();
  assert.equal(await c.ended, "session.resume_failed");
});

test("a node unreachable for the whole grace ends the session with resume_failed", async () => {
  const server = new FakeServer({ grace: 0.3 });
  const c = await client(server);
  server.refuse = true;
  server.last.drop();
  assert.equal(await c.ended, "resume_failed");
  assert.ok(server.sockets.length >= 3, `${server.sockets.length} attempts`);
});

test("a refused hello rejects connect and ends the session with the code", async () => {
  const server = new FakeServer();
  server.handle = (socket, m) => {
    socket.push({ t: "error", id: m.id, code: "version.update_required", message: "update" });
    socket.drop(4000);
  };
  const c = new SessionClient("ws://fake/", "tok", { WebSocket: server.WebSocket });
  const error = await c.connect().then(() => null, (e) => e);
  assert.equal(error.code, "version.update_required");
  assert.equal(await c.ended, "version.update_required");
});

test("close says bye, waits for the link to go and ends with closed", async () => {
  const server = new FakeServer();
  const c = await client(server);
  await c.close();
  assert.equal(await c.ended, "closed");
  assert.deepEqual(server.last.types(), ["hello", "bye"]);
  assert.ok(c.events.some((e) => e.t === "client.ended" && e.reason === "closed"));
  await c.close();
});
