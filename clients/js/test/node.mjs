// Test fixture: a real `twistd -n mmoshard` all-in-one node (SQLite + memory store, free ports),
// started by the Node tests themselves, and helpers to make players on it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

import { characters, createCharacter, login, register } from "../src/index.js";

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(PACKAGE_DIR, "..", "..");
export const PYTHON = process.env.PYTHON || "python3";

/**
 * The WebSocket the tests give the client: the global one (Node >= 22, or
 * Node 20/21 with --experimental-websocket, which test/run.mjs passes), else
 * the ws package's (Node 18).
 */
export const WebSocketImpl = globalThis.WebSocket ?? (await import("ws")).WebSocket;

/** @return a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Await `predicate()` (sync or async) until it is truthy; fail after `seconds`. */
export async function waitFor(predicate, seconds = 10, what = "the condition") {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${seconds} s`);
    await sleep(20);
  }
}

function toml(sections) {
  const lines = [];
  for (const [table, values] of Object.entries(sections)) {
    lines.push(`[${table}]`);
    for (const [key, value] of Object.entries(values)) lines.push(`${key} = ${JSON.stringify(value)}`);
    lines.push("");
  }
  return lines.join("\n");
}

/**
 * Start a node and wait until its /readyz answers 200.
 * @param {object} [sections] config tables over the defaults (e.g. {session: {...}}); `node`
 *   and `auth` are merged key by key.
 * @return {Promise<{http, ws, admin, pid, output(), pause(), resume(), stop()}>}
 */
export async function startNode(sections = {}) {
  const dir = await mkdtemp(join(tmpdir(), "mmoshard-js-"));
  const [admin, http, ws] = await Promise.all([freePort(), freePort(), freePort()]);
  const { node: nodeSection, auth: authSection, ...rest } = sections;
  const config = {
    node: { id: `js-${process.pid}`, var_dir: join(dir, "var"), ...nodeSection },
    listen: {
      admin: `tcp:${admin}:interface=127.0.0.1`,
      http: `tcp:${http}:interface=127.0.0.1`,
      tcp: "",
      websocket: `tcp:${ws}:interface=127.0.0.1`,
    },
    public: { host: "127.0.0.1" },
    // Registrations come from one address.
    auth: { register_rate: 1000, login_rate: 1000, ...authSection },
    ...rest,
  };
  const path = join(dir, "node.toml");
  await writeFile(path, toml(config));
  const env = { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(":") };
  const child = spawn(PYTHON, [
    "-c", "from twisted.scripts.twistd import run; run()",
    "-n", "--pidfile=", "mmoshard", "--config", path,
  ], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  const chunks = [];
  child.stdout.on("data", (d) => chunks.push(d));
  child.stderr.on("data", (d) => chunks.push(d));
  let exitCode = null;
  const exited = new Promise((r) => child.on("exit", (code, signal) => {
    exitCode = code ?? signal;
    r(exitCode);
  }));
  // A test process that dies must not leave its server behind.
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  const output = () => Buffer.concat(chunks).toString();
  const node = {
    http: `http://127.0.0.1:${http}`,
    ws: `ws://127.0.0.1:${ws}/`,
    admin: `http://127.0.0.1:${admin}`,
    pid: child.pid,
    dir,
    output,
    /** Freeze the process (SIGSTOP): its sockets stay open, nothing answers. */
    pause: () => child.kill("SIGSTOP"),
    resume: () => child.kill("SIGCONT"),
    /** SIGTERM, then SIGKILL after 15 s. @return the exit code. */
    async stop() {
      process.off("exit", killOnExit);
      if (exitCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
      return exitCode;
    },
  };
  const deadline = Date.now() + 60000;
  for (;;) {
    if (exitCode !== null) {
      throw new Error(`twistd exited with ${exitCode} before it was ready:\n${output()}`);
    }
    try {
      const response = await fetch(`${node.admin}/readyz`);
      if (response.status === 200) return node;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await node.stop();
      throw new Error(`twistd was not ready within 60 s:\n${output()}`);
    }
    await sleep(100);
  }
}

let counter = 0;

/** @return `n` random lower-case letters (names: characters take letters only). */
export function letters(n) {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + Math.floor(Math.random() * 26));
  return s;
}

export const PASSWORD = "correct-horse-battery-staple";

/**
 * Register an account, log in and create a character of `cls`.
 * @return {{username, tokens, character}}
 */
export async function newPlayer(node, cls = "warrior") {
  counter += 1;
  const username = `js${counter}_${letters(8)}`;
  await register(node.http, username, PASSWORD);
  const tokens = await login(node.http, username, PASSWORD);
  const name = "J" + letters(9);
  const character = await createCharacter(node.http, tokens.access_token, { name, cls });
  const listed = await characters(node.http, tokens.access_token);
  if (!listed.characters.some((c) => c.id === character.id)) throw new Error("character not listed");
  return { username, tokens, character };
}

/** Client options every test uses: a build the release data accepts, the test's WebSocket. */
export const CLIENT = { clientVersion: "1.10.0", platform: "web", WebSocket: WebSocketImpl };

/** Fail when the node logged a traceback (bad input must get a typed error, never one). */
export function assertNoTraceback(node) {
  const text = node.output();
  if (/Traceback \(most recent call last\)|Unhandled Error/.test(text)) {
    throw new Error(`the node logged a traceback:\n${text}`);
  }
}

const SHARED_STORES = `
import json
from twisted.internet.defer import Deferred
from twisted.internet.task import react
from mmoshard.testing import requireMySQL, requireRedis

async def main(reactor):
    from mmoshard.store.sql import SQLStore, migrate
    sql, _ = requireMySQL()
    volatile, prefix, _ = requireRedis()
    store = SQLStore(reactor, sql)
    store.open()
    try:
        await migrate(store)
    finally:
        await store.close()
    print(json.dumps({"sql": sql, "volatile": volatile, "prefix": prefix}))

react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
`;

const DROP_STORES = `
import socket, sys
import pymysql
from mmoshard.testing import mysqlAddress, redisAddress
database, prefix = sys.argv[1], sys.argv[2]
host, port, user, password = mysqlAddress()
conn = pymysql.connect(host=host, port=port, user=user, password=password)
with conn.cursor() as cur:
    cur.execute("DROP DATABASE IF EXISTS \`%s\`" % database)
conn.close()
host, port = redisAddress()
script = (b"local cursor = '0' repeat local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000) "
          b"cursor = r[1] for _, k in ipairs(r[2]) do redis.call('DEL', k) end until cursor == '0' return 0")
parts = [b"EVAL", script, b"0", (prefix + "*").encode()]
s = socket.create_connection((host, port), timeout=5)
s.sendall(b"*%d\\r\\n" % len(parts) + b"".join(b"$%d\\r\\n%s\\r\\n" % (len(p), p) for p in parts))
s.recv(64)
s.close()
`;

function python(code, args = []) {
  const env = { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(":") };
  return new Promise((resolveRun) => {
    const child = spawn(PYTHON, ["-c", code, ...args], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("exit", (code) => resolveRun({
      code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(),
    }));
  });
}

/**
 * What a shard's processes share, as mmoshard/testing.py's sharedStores makes it: a fresh,
 * migrated database on the test MariaDB/MySQL (MMOSHARD_TEST_MYSQL) and a fresh key prefix on
 * the test Redis (MMOSHARD_TEST_REDIS).
 * @return {{sql, volatile, prefix, drop()}}, or {unavailable: why} when a server is not there
 *   (the caller skips, and fails under CI=true).
 */
export async function sharedStores() {
  const made = await python(SHARED_STORES);
  if (made.code !== 0) {
    const why = made.stderr.trim().split("\n").at(-1);
    // mmoshard.testing skips (SkipTest) on a developer machine, fails under CI=true.
    if (/SkipTest/.test(made.stderr)) return { unavailable: why };
    throw new Error(`cannot make the shared stores:\n${made.stderr}`);
  }
  const stores = JSON.parse(made.stdout.trim().split("\n").at(-1));
  stores.drop = async () => {
    const dropped = await python(DROP_STORES, [stores.sql.split("/").at(-1), stores.prefix]);
    if (dropped.code !== 0) throw new Error(`cannot drop the shared stores:\n${dropped.stderr}`);
  };
  return stores;
}

/** The session settings of the live tests: quick heartbeats, a resume grace a test can wait out. */
export const QUICK_SESSION = { session: { heartbeat: 0.5, heartbeat_timeout: 3.0, resume_grace: 10.0 } };

/**
 * One node for a whole test file: started before its first test (`use(node)` receives it),
 * stopped after its last, failing the file when the node logged a traceback.
 */
export function sharedNode(sections, use) {
  let node;
  before(async () => {
    node = await startNode(sections);
    use(node);
  });
  after(async () => {
    if (node === undefined) return;
    try {
      assertNoTraceback(node);
    } finally {
      await node.stop();
    }
  });
}

/** @return what `promise` rejects with; fails when it resolves. */
export const refusal = (promise) => promise.then(() => assert.fail("not refused"), (e) => e);
