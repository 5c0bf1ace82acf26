// One session with a node over WebSocket: hello, requests by id, events, heartbeats, automatic resume.
// Semantics follow the Python client, mmoshard/wire/client.py (docs/protocol.md).

import { BusyRetry } from "./busy.js";
import { HeldRequests } from "./held.js";
import { decodeMessage, encodeMessage } from "./codec.js";
import {
  CLOSED, CONNECTION_LOST, FATAL_CODES, FRAME_TOO_LARGE, RequestError, TIMEOUT, clientError,
} from "./errors.js";

/** The WebSocket subprotocol the server requires. */
export const SUBPROTOCOL = "mmoshard.v1";

// The close code of a link this client drops (1000 and 3000-4999 are what
// a browser may send); the server treats it as any lost connection.
const CLOSE_DROPPED = 4001;
const SILENT_BEATS = 3;

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One session with a node.  Events (server-initiated messages, and replies
 * to no pending request) go to `onEvent(type, message)`, to the listeners
 * of `on(type, fn)` and `on("*", fn)`, and to `nextEvent` waiters.
 * `ended` resolves with the reason once the session is over for good.
 */
export class SessionClient {
  /**
   * @param {string} url the node's WebSocket address, `ws://host:port/`.
   * @param {string} token an access token (`login(...).access_token`).
   * @param {object} [options] see connect().
   */
  constructor(url, token, options = {}) {
    this.url = url;
    // The node first, then the other nodes of the role (addresses or directory entries).
    this.urls = [url];
    for (const alternate of options.alternates ?? []) {
      const address = typeof alternate === "string" ? alternate : alternate && alternate.websocket;
      if (address && !this.urls.includes(address)) this.urls.push(address);
    }
    this.onMoved = options.onMoved ?? null;
    this.token = token;
    this.clientVersion = options.clientVersion ?? "0.0.0";
    this.platform = options.platform ?? "web";
    this.onEvent = options.onEvent ?? null;
    this.autoResume = options.autoResume ?? true;
    this.heartbeat = options.heartbeat ?? true;
    this.connectTimeout = options.connectTimeout ?? 10;
    this.maxFrame = options.maxFrame ?? 65536;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.welcome = null;
    this.sessionId = null;
    this.accountId = null;
    this.resumeToken = null;
    this.resumeGrace = 0;
    this.heartbeatInterval = null;
    this.lastSeq = 0;
    this.rtt = null;
    this.resumes = 0;
    this.moves = 0;
    this.endReason = null;
    this.ended = new Promise((resolve) => { this._resolveEnded = resolve; });
    this._link = null;
    this._ready = false;
    this._pending = new Map();
    this._held = new HeldRequests();
    this._busy = new BusyRetry(options.busyRetries ?? 3, (entry) => this._dispatch(entry));
    this._nextId = 0;
    this._closing = false;
    this._resuming = false;
    this._fatal = null;
    this._lastError = null;
    this._listeners = new Map();
    this._waiters = [];
    this._lostWaiters = [];
    this._beatTimer = null;
    this._pingNonce = 0;
    this._pingSentAt = null;
    this._heard = 0;
    this._heardAtLastBeat = 0;
    this._silentBeats = 0;
  }

  /** Whether the link is up and the session usable (false while resuming). */
  get connected() {
    return this._ready;
  }

  // -- public API --------------------------------------------------------

  /** Open the link and say hello. @return the `welcome` message. */
  async connect() {
    if (this._link !== null || this.welcome !== null || this.endReason !== null) {
      throw new Error("connect() is called once per SessionClient");
    }
    if (typeof this.WebSocket !== "function") {
      throw new Error("no WebSocket implementation: pass options.WebSocket "
        + "(e.g. the ws package's) or run Node >= 22 or a browser");
    }
    try {
      await this._open(this.connectTimeout);
      return await this._call({
        t: "hello",
        token: this.token,
        client_version: this.clientVersion,
        platform: this.platform,
      }, true);
    } catch (e) {
      const code = e instanceof RequestError ? e.code : null;
      this._abandonLink();
      const reason = code !== null && !code.startsWith("client.") ? code : null;
      this._end(reason || this._fatal || this._lastError || "disconnected");
      throw e;
    }
  }

  /**
   * Send a request and wait for its reply.
   * @return {Promise<object>} the reply message (its `t` is the request's type).
   * @throws RequestError the server's error (`code`, `message`, `retryAfter`),
   *   or `client.connection_lost` (the link dropped before the reply, or is
   *   down: the request may or may not have been applied), `client.closed`
   *   (the session is over), `client.frame_too_large` (not sent).
   */
  request(type, body = {}) {
    return this._call({ ...body, t: type }, false);
  }

  /**
   * Send a message that gets no reply (e.g. `world.move`).
   * @return {boolean} whether it was sent (false while the link is down).
   * @throws RequestError `client.frame_too_large` (not sent).
   */
  send(type, body = {}) {
    try {
      this._write({ ...body, t: type }, false);
      return true;
    } catch (e) {
      if (e instanceof RequestError && e.code === FRAME_TOO_LARGE) throw e;
      return false;
    }
  }

  /** Call `fn(message)` for each event of `type` ("*": every event). @return this client. */
  on(type, fn) {
    let set = this._listeners.get(type);
    if (set === undefined) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    return this;
  }

  /** Stop calling `fn` for `type`. @return this client. */
  off(type, fn) {
    const set = this._listeners.get(type);
    if (set !== undefined) set.delete(fn);
    return this;
  }

  /**
   * The next event of `type` (any type when omitted) arriving after this
   * call: events are not buffered.
   * @param {number} [timeout] seconds; then it rejects with `client.timeout`.
   */
  nextEvent(type, timeout) {
    return new Promise((resolve, reject) => {
      if (this.endReason !== null) {
        reject(clientError(CLOSED, `the session ended: ${this.endReason}`));
        return;
      }
      const waiter = { type, resolve, reject, timer: null };
      if (timeout !== undefined) {
        waiter.timer = setTimeout(() => {
          this._waiters = this._waiters.filter((w) => w !== waiter);
          reject(clientError(TIMEOUT, `no ${type || "event"} within ${timeout} s`));
        }, timeout * 1000);
      }
      this._waiters.push(waiter);
    });
  }

  /** Log out (`bye`) and close. @return when the link is gone (`ended` is "closed"). */
  async close() {
    if (this.endReason !== null) return;
    this._closing = true;
    const link = this._link;
    if (link === null || !this._ready) {
      this._abandonLink();
      this._end("closed");
      return;
    }
    const lost = new Promise((resolve) => this._lostWaiters.push(resolve));
    try {
      this._write({ t: "bye" }, true);
    } catch {
      // the link is going anyway
    }
    // The server answers bye and closes; a link that does not is dropped.
    const timer = setTimeout(() => this.drop(), 2000);
    await lost;
    clearTimeout(timer);
    this._end("closed");
  }

  /** Drop the link without logging out, as a network failure would (the client resumes). */
  drop() {
    const link = this._link;
    if (link === null) return;
    this._closeSocket(link, CLOSE_DROPPED);
    this._linkLost(link, 1006);
  }

  // -- the link ----------------------------------------------------------

  _open(timeoutSeconds) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.WebSocket(this.url, [SUBPROTOCOL]);
      } catch (e) {
        reject(clientError(CONNECTION_LOST, `cannot open ${this.url}: ${e && e.message}`));
        return;
      }
      ws.binaryType = "arraybuffer";
      const link = { ws, open: false, dead: false };
      const fail = (why) => {
        if (link.open || link.dead) return;
        link.dead = true;
        clearTimeout(timer);
        this._closeSocket(link, 1000);
        reject(clientError(CONNECTION_LOST, `cannot open ${this.url}: ${why}`));
      };
      const timer = setTimeout(() => fail("timed out"), timeoutSeconds * 1000);
      ws.onopen = () => {
        if (link.dead) return;
        clearTimeout(timer);
        if (ws.protocol && ws.protocol !== SUBPROTOCOL) {
          fail(`the server chose subprotocol ${ws.protocol}`);
          return;
        }
        link.open = true;
        this._link = link;
        this._heard = this._heardAtLastBeat = 0;
        this._silentBeats = 0;
        resolve(link);
      };
      ws.onmessage = (event) => this._received(link, event.data);
      ws.onerror = () => {
        // Some implementations (Node's undici) fire no close event after
        // a failed opening, nor always after an error: the link is gone.
        if (!link.open) {
          fail("connection failed");
        } else if (!link.dead) {
          this._closeSocket(link, 1000);
          this._linkLost(link, 1006);
        }
      };
      ws.onclose = (event) => {
        if (!link.open) {
          fail(`closed (${event.code})`);
          return;
        }
        this._linkLost(link, event.code);
      };
    });
  }

  _closeSocket(link, code) {
    link.dead = true;
    const ws = link.ws;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(code);
    } catch {
      // already closing
    }
  }

  _abandonLink() {
    const link = this._link;
    if (link !== null) {
      this._closeSocket(link, 1000);
      this._linkLost(link, 1000);
    }
  }

  _write(message, handshake) {
    // handshake: hello, resume, pong and bye, which go out while the session is not (or no longer) usable.
    if (this.endReason !== null || (this._closing && !handshake)) {
      throw clientError(CLOSED, `the session ended: ${this.endReason || "closed"}`);
    }
    const link = this._link;
    if (link === null || (!this._ready && !handshake)) {
      throw clientError(CONNECTION_LOST, "not connected");
    }
    const bytes = encodeMessage(message);
    if (bytes.byteLength > this.maxFrame) {
      throw clientError(FRAME_TOO_LARGE,
        `${message.t} is ${bytes.byteLength} bytes, over the server's ${this.maxFrame}; not sent`);
    }
    link.ws.send(bytes);
  }

  _call(message, handshake) {
    return new Promise((resolve, reject) => {
      this._dispatch({ resolve, reject, type: message.t, message, handshake });
    });
  }

  // Send a pending entry's request under a new id (again after server.busy).
  _dispatch(entry) {
    const id = ++this._nextId;
    entry.message.id = id;
    if (this._held.holding && !entry.handshake) {
      this._held.hold(entry);
      return;
    }
    this._pending.set(id, entry);
    try {
      this._write(entry.message, entry.handshake);
    } catch (e) {
      this._pending.delete(id);
      entry.reject(e);
    }
  }

  // -- incoming ----------------------------------------------------------

  _received(link, data) {
    if (link !== this._link || typeof data === "string") return;
    this._heard += 1;
    let message;
    try {
      message = decodeMessage(data);
    } catch (e) {
      console.error(`mmoshard-client: undecodable message from ${this.url}; dropping the link`, e);
      this.drop();
      return;
    }
    const seq = message.seq;
    if (typeof seq === "number") {
      if (seq <= this.lastSeq) return; // already seen before a resume
      this.lastSeq = seq;
    }
    const t = message.t;
    if (t === "ping") {
      const pong = { t: "pong" };
      if ("n" in message) pong.n = message.n;
      if ("id" in message) pong.id = message.id;
      try {
        this._write(pong, true);
      } catch {
        // the link is gone
      }
      return;
    }
    if (t === "pong" && message.id === undefined) {
      if (message.n === this._pingNonce && this._pingSentAt !== null) {
        this.rtt = (now() - this._pingSentAt) / 1000;
        this._pingSentAt = null;
      }
      return;
    }
    if (t === "error") this._lastError = message.code;
    if (t === "error" && FATAL_CODES.has(message.code)) {
      this._fatal = message.code;
    } else if (t === "server.shutdown") {
      if (!message.resume) {
        this._fatal = "shutdown";
      } else if (this.autoResume) {
        // The node stops and keeps the session resumable: go on on the
        // next node of the role when the link closes, and send again there
        // what this one did not answer.
        this._nextUrl();
        this._held.stopping(message, this._pending);
      }
    }
    if (message.id !== undefined) {
      const pending = this._pending.get(message.id);
      if (pending !== undefined) {
        this._pending.delete(message.id);
        if (t === "error") {
          if (!this._busy.take(pending, message)) pending.reject(new RequestError(message));
        } else {
          // The session's state changes before anything that follows on
          // the link (replayed events come right after resumed).
          if (pending.type === "hello") this._welcomed(message);
          else if (pending.type === "resume") this._resumed(message);
          pending.resolve(message);
        }
        return;
      }
    }
    this._emit(t, message);
  }

  _welcomed(welcome) {
    this.welcome = welcome;
    this.sessionId = welcome.session_id;
    this.accountId = welcome.account_id;
    this.resumeToken = welcome.resume_token;
    this.resumeGrace = welcome.resume_grace_s ?? 0;
    if (typeof welcome.max_frame === "number") this.maxFrame = welcome.max_frame;
    this._ready = true;
    this._startHeartbeat(welcome.heartbeat_s);
  }

  _resumed(reply) {
    this.resumeToken = reply.resume_token;
    this.resumes += 1;
    this._ready = true;
    this._silentBeats = 0;
    if (this.heartbeat === true && typeof reply.heartbeat_s === "number") {
      this.heartbeatInterval = reply.heartbeat_s;
    }
    const moved = reply.moved === true;
    this._emit("client.resumed", {
      t: "client.resumed", replayed: reply.replayed, resumes: this.resumes, moved, url: this.url,
    });
    if (moved) {
      // Another node took the session over: chat follows by itself, the
      // world needs world.enter again.
      this.moves += 1;
      if (this.onMoved !== null) this._deliver(this.onMoved, "client.moved", reply, false);
      this._emit("client.moved", { t: "client.moved", url: this.url, moves: this.moves, resumed: reply });
    }
    this._held.resend(this._pending, (message) => this._write(message, false));
  }

  /** The next address of the role, after the current one (itself when there is no other). */
  _nextUrl() {
    const at = this.urls.indexOf(this.url);
    this.url = this.urls[(at + 1) % this.urls.length];
  }

  _emit(type, message) {
    if (this.onEvent !== null) this._deliver(this.onEvent, type, message, true);
    for (const key of [type, "*"]) {
      const set = this._listeners.get(key);
      if (set !== undefined) {
        for (const fn of [...set]) this._deliver(fn, type, message, false);
      }
    }
    if (this._waiters.length) {
      const keep = [];
      for (const w of this._waiters) {
        if (w.type === undefined || w.type === type) {
          clearTimeout(w.timer);
          w.resolve(message);
        } else {
          keep.push(w);
        }
      }
      this._waiters = keep;
    }
  }

  _deliver(fn, type, message, withType) {
    try {
      if (withType) fn(type, message);
      else fn(message);
    } catch (e) {
      console.error(`mmoshard-client: a listener of ${type} failed`, e);
    }
  }

  _linkLost(link, code) {
    if (link !== this._link) return;
    this._link = null;
    this._ready = false;
    this._pingSentAt = null;
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      p.reject(clientError(CONNECTION_LOST, "the link dropped before the reply"));
    }
    const waiters = this._lostWaiters;
    this._lostWaiters = [];
    for (const resolve of waiters) resolve();
    if (this._closing || this.endReason !== null || this.welcome === null || this._resuming) {
      // close(), connect() and the resume loop handle their own links.
      return;
    }
    this._emit("client.link_lost", { t: "client.link_lost", code });
    if (this.autoResume && this.resumeToken && this._fatal === null) {
      this._resume();
    } else {
      this._end(this._fatal || "disconnected");
    }
  }

  async _resume() {
    this._resuming = true;
    const deadline = now() + this.resumeGrace * 1000;
    let delay = 50;
    try {
      while (!this._closing && this.endReason === null) {
        try {
          await this._open(Math.max(0.05, Math.min(this.connectTimeout, (deadline - now()) / 1000)));
          await this._call({
            t: "resume",
            resume_token: this.resumeToken,
            last_seq: this.lastSeq,
          }, true);
          return;
        } catch (e) {
          this._abandonLink();
          if (this._closing || this.endReason !== null) return;
          const code = e instanceof RequestError ? e.code : CONNECTION_LOST;
          if (code === "server.unavailable") {
            // Revocations cannot be checked now: the session stays link-dead.
            delay = Math.max(delay, (e.retryAfter ?? 1) * 1000);
          } else if (!code.startsWith("client.")) {
            this._end(code);
            return;
          } else {
            // The node may be gone: try the next one of the role.
            this._nextUrl();
          }
          if (now() + delay >= deadline) {
            this._end("resume_failed");
            return;
          }
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
        }
      }
    } finally {
      this._resuming = false;
    }
    if (this._closing && this.endReason === null) this._end("closed");
  }

  // -- heartbeat ---------------------------------------------------------

  _startHeartbeat(serverInterval) {
    if (this.heartbeat === false) return;
    this.heartbeatInterval = typeof this.heartbeat === "number" ? this.heartbeat : serverInterval;
    if (!(this.heartbeatInterval > 0)) return;
    this._beatTimer = setTimeout(() => this._beat(), this.heartbeatInterval * 1000);
  }

  _beat() {
    this._beatTimer = null;
    if (this.endReason !== null || this._closing) return;
    if (this._link !== null && this._ready) {
      if (this._heard === this._heardAtLastBeat) {
        this._silentBeats += 1;
        if (this._silentBeats >= SILENT_BEATS) {
          // The server pings every beat: three silent beats mean the link
          // is dead even if the socket has not noticed.
          this.drop();
        }
      } else {
        this._silentBeats = 0;
      }
      this._heardAtLastBeat = this._heard;
      if (this._link !== null) {
        this._pingNonce += 1;
        this._pingSentAt = now();
        try {
          this._write({ t: "ping", n: this._pingNonce }, false);
        } catch {
          // dropped meanwhile
        }
      }
    }
    this._beatTimer = setTimeout(() => this._beat(), this.heartbeatInterval * 1000);
  }

  _end(reason) {
    if (this.endReason !== null) return;
    this.endReason = reason;
    this._ready = false;
    if (this._beatTimer !== null) {
      clearTimeout(this._beatTimer);
      this._beatTimer = null;
    }
    const link = this._link;
    if (link !== null) {
      this._link = null;
      this._closeSocket(link, 1000);
    }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) p.reject(clientError(CLOSED, `the session ended: ${reason}`));
    this._held.fail(clientError(CLOSED, `the session ended: ${reason}`));
    this._busy.fail(clientError(CLOSED, `the session ended: ${reason}`));
    this._emit("client.ended", { t: "client.ended", reason });
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(clientError(CLOSED, `the session ended: ${reason}`));
    }
    this._resolveEnded(reason);
  }
}
