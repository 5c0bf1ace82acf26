// The game's session connections: one client per role (world, chat, matchmaking), shared when a node hosts several; redirects and transfers between world nodes.

import { connect } from "/lib/mmoshard-client.js";

export const ROLES = ["world", "chat", "matchmaking"];
// The web build, as etc/releases/web.toml publishes it: the client gate lets in builds from its
// `minimum` (mmoshard/web/test/test_static.py checks the shipped release data lets this one in).
export const CLIENT_VERSION = "1.10.0";

/** The WebSocket address of the first (least loaded) process of a directory listing. */
export function firstWebSocket(entries) {
  for (const entry of entries || []) {
    if (entry && entry.websocket) return entry.websocket;
  }
  return null;
}

/**
 * The other processes a session serving `roles` may resume on when its own stops: those the
 * directory lists for every one of the roles.  None for a world session: the world needs
 * world.enter again after a move, so it resumes on its own node (within the grace).
 */
export function alternatesFor(directory, roles) {
  if (!roles.length || roles.includes("world")) return [];
  const lists = roles.map((role) => (directory && directory[role] || []).map((e) => e && e.websocket));
  return lists[0].filter((url) => url && lists.every((list) => list.includes(url)));
}

export class Link {
  /**
   * @param tokenSource async () => a valid access token.
   * @param onEnded (reason, roles, message) => void: a session we still used ended; `message` is
   *   the server's words for it (the closing error's message), when it said any.
   */
  constructor(tokenSource, onEnded) {
    this.tokenSource = tokenSource;
    this.onEnded = onEnded;
    this.clients = Object.fromEntries(ROLES.map((r) => [r, null]));
    this.urls = Object.fromEntries(ROLES.map((r) => [r, null]));
    this.handlers = Object.fromEntries(ROLES.map((r) => [r, []]));
    this.retired = new WeakSet();
    // client -> the last error or server.shutdown without a request id: what ended it, in words.
    this.lastWords = new WeakMap();
    this.closing = false;
  }

  /** Call `fn(body)` for every event `type` of `role`, whichever connection serves the role now or later. */
  on(role, type, fn) {
    this.handlers[role].push([type, fn]);
    const client = this.clients[role];
    if (client) client.on(type, fn);
  }

  has(role) {
    return this.clients[role] !== null;
  }

  /** A request to the process serving `role`; rejects with RequestError, or an Error when none does. */
  request(role, type, body = {}) {
    const client = this.clients[role];
    if (!client) return Promise.reject(Object.assign(new Error(`no ${role} server`), { code: "client.no_server" }));
    return client.request(type, body);
  }

  /** A message without a reply (world.move). */
  send(role, type, body) {
    const client = this.clients[role];
    if (client) client.send(type, body);
  }

  /** The world session's round-trip time, seconds (null before the first pong). */
  rtt() {
    const client = this.clients.world;
    return client && typeof client.rtt === "number" ? client.rtt : null;
  }

  async open(url, alternates = []) {
    const client = await connect(url, await this.tokenSource(), {
      clientVersion: CLIENT_VERSION, platform: "web", heartbeat: true, alternates,
    });
    // Chat and matchmaking follow their session to another node by themselves.
    client.on("client.moved", (m) => {
      for (const role of ROLES) if (this.clients[role] === client) this.urls[role] = m.url;
    });
    client.on("error", (m) => this.lastWords.set(client, m));
    client.on("server.shutdown", (m) => this.lastWords.set(client, { code: "shutdown", message: m.reason }));
    client.ended.then((reason) => this.ended(client, reason), (error) => this.ended(client, String(error)));
    return client;
  }

  /** Connect each role to its address (from the login's directory), one connection per address. */
  async start(directory) {
    this.closing = false;
    const opened = new Map();
    for (const role of ROLES) {
      const url = firstWebSocket(directory && directory[role]);
      if (!url) continue;
      if (!opened.has(url)) {
        const roles = ROLES.filter((r) => firstWebSocket(directory && directory[r]) === url);
        opened.set(url, await this.open(url, alternatesFor(directory, roles)));
      }
      this.attach(role, opened.get(url), url);
    }
    if (!this.clients.world) throw new Error("no world server is running");
  }

  /** Let `client` (at `url`) serve `role`, moving the role's event handlers onto it. */
  attach(role, client, url) {
    const old = this.clients[role];
    if (old === client) return;
    if (old) for (const [type, fn] of this.handlers[role]) old.off(type, fn);
    this.clients[role] = client;
    this.urls[role] = url;
    for (const [type, fn] of this.handlers[role]) client.on(type, fn);
    if (old && !ROLES.some((r) => this.clients[r] === old)) this.retire(old);
  }

  /**
   * Move the world role to the process at `url` (a redirect or a transfer);
   * the roles the old connection also served move along when that process
   * serves them too (a session there of the same kind replaces the old one).
   * @return the roles that moved besides world.
   */
  async moveWorld(url, directory) {
    const client = await this.open(url);
    const old = this.clients.world;
    const moved = [];
    for (const role of ROLES) {
      if (role === "world") continue;
      const served = (directory && directory[role] || []).some((e) => e.websocket === url);
      if (served && this.clients[role] === old) moved.push(role);
    }
    this.attach("world", client, url);
    for (const role of moved) this.attach(role, client, url);
    return moved;
  }

  retire(client) {
    this.retired.add(client);
    client.close().catch(() => {});
  }

  ended(client, reason) {
    if (this.closing || this.retired.has(client)) return;
    const roles = ROLES.filter((r) => this.clients[r] === client);
    if (!roles.length) return;
    for (const role of roles) this.clients[role] = null;
    const words = this.lastWords.get(client);
    this.onEnded(reason, roles, words && words.code === reason ? words.message : null);
  }

  /** Log out of every session (bye). */
  async close() {
    this.closing = true;
    const all = new Set(ROLES.map((r) => this.clients[r]).filter(Boolean));
    for (const role of ROLES) this.clients[role] = null;
    for (const client of all) this.retired.add(client);
    await Promise.all([...all].map((c) => c.close().catch(() => {})));
  }
}
