// The mmoshard play client: the page's state, its screens and its loop; exposed as window.mmoshardPlay for tools and tests.

import { refresh } from "/lib/mmoshard-client.js";
import { $, el, show, status } from "./dom.js";
import { AccountScreens } from "./account.js";
import { Link } from "./connection.js";
import { World } from "./world.js";
import { Renderer } from "./render.js";
import { Movement } from "./movement.js";
import { Combat } from "./combat.js";
import { Chat } from "./chat.js";
import { Social } from "./social.js";
import { Inventory } from "./inventory.js";
import { Matchmaking } from "./matchmaking.js";
import { Game } from "./game.js";

const SCREENS = ["login", "characters", "game"];
// A token this close to its expiry is refreshed before it opens a session.
const TOKEN_MARGIN_S = 60;

/** What a session's end reason means to a player. */
export function describeEnd(reason) {
  const text = String(reason || "");
  if (/kick/i.test(text)) return "you were kicked by an operator";
  if (text.includes("banned") || text === "auth.revoked") {
    return "your login was revoked (by an operator, or a sign-out elsewhere)";
  }
  if (text === "session.replaced") return "you logged in from somewhere else";
  if (text.includes("shutdown")) return "the server is shutting down";
  if (text.includes("maintenance")) return "the server is down for maintenance";
  if (text === "disconnected" || text === "resume_failed") return "the connection was lost";
  return text || "the server closed it";
}

/** The REST API's base URL for a page at `location`: `?server=` when it names an http(s) origin, else its own. */
export function serverOf(location) {
  const asked = new URLSearchParams(location.search).get("server");
  if (asked) {
    try {
      const url = new URL(asked);
      if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
    } catch (error) {
      // Not a URL: the page's own origin.
    }
  }
  return location.origin;
}

class App {
  constructor() {
    // The REST API: the page's own origin, or ?server=http://host:port for one elsewhere (its
    // [web] cors_origins must then name this page's origin).
    this.httpBase = serverOf(window.location);
    this.state = {
      screen: "login", account: null, tokens: null, characters: [], me: null, zone: null, target: null,
      chat: [], friends: [], party: null, partyInvite: null, inventory: [], abilities: [], ended: null,
      zoneChannel: null,
    };
    this.world = new World();
    Object.defineProperty(this.state, "entities", { enumerable: true, get: () => this.world.entities });
    this.renderer = new Renderer($("world"), this.world);
    this.account = new AccountScreens(this);
    // One link and one of each part for the page's life: each game reconnects the link.
    this.link = new Link(() => this.accessToken(),
      (reason, roles, message) => this.sessionEnded(reason, roles, message));
    this.movement = new Movement(this.world, (body) => this.link.send("world", "world.move", body),
      () => this.stopCastOnMove());
    this.combat = new Combat(this);
    this.chatPanel = new Chat(this);
    this.social = new Social(this);
    this.inventory = new Inventory(this);
    this.game = new Game(this);
    this.matchmaking = new Matchmaking(this);
    this.link.on("world", "client.link_lost", () => this.status("Connection lost: resuming…", true));
    this.link.on("world", "client.resumed", () => this.status("Reconnected."));
    this.running = false;
    window.addEventListener("keydown", (event) => {
      if (this.state.screen !== "game" || !this.running) return;
      this.movement.keyDown(event);
      this.combat.key(event);
    });
    window.addEventListener("keyup", (event) => this.movement.keyUp(event));
    window.addEventListener("blur", () => this.movement.press([]));
    document.querySelectorAll(".tabs [data-tab]").forEach((tab) => {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tab));
    });
    $("world").addEventListener("click", (event) => {
      if (!this.running) return;
      const rect = event.target.getBoundingClientRect();
      this.combat.click(event.clientX - rect.left, event.clientY - rect.top, performance.now());
      $("world").focus();
    });
    this.showScreen("login");
  }

  showScreen(name) {
    this.state.screen = name;
    for (const screen of SCREENS) show($(`${screen}-screen`), screen === name);
    if (name === "login") $("login-name").focus();
  }

  showTab(name) {
    document.querySelectorAll(".tabs [data-tab]").forEach((tab) => {
      tab.classList.toggle("active", tab.dataset.tab === name);
      show($(`tab-${tab.dataset.tab}`), tab.dataset.tab === name);
    });
    if (name === "bag") {
      this.inventory.load();
      this.inventory.loadLockouts();
    }
    if (name === "queue") this.matchmaking.refresh();
  }

  loggedIn(tokens) {
    this.state.tokens = { ...tokens, obtained: Date.now() };
    this.state.account = { id: tokens.account_id, username: tokens.username };
  }

  loggedOut() {
    this.state.tokens = null;
    this.state.account = null;
    this.showScreen("login");
  }

  /** An access token good for a while yet (refreshed when close to its expiry). */
  async accessToken() {
    const tokens = this.state.tokens;
    const age = (Date.now() - tokens.obtained) / 1000;
    if (age > (tokens.expires_in || 900) - TOKEN_MARGIN_S) {
      const fresh = await refresh(this.httpBase, tokens.refresh_token);
      this.state.tokens = { ...tokens, ...fresh, directory: tokens.directory, obtained: Date.now() };
    }
    return this.state.tokens.access_token;
  }

  /** Connect, enter the world as `character`, say hello to chat, and show the game. */
  async enterGame(character) {
    this.state.ended = null;
    show($("banner"), false);
    try {
      await this.link.start(this.state.tokens.directory);
      await this.game.enter(character);
    } catch (error) {
      await this.link.close();
      throw error;
    }
    this.showScreen("game");
    this.say("system", `Welcome, ${this.world.me.name}. Move with WASD or the arrow keys; click to target, `
      + "1-9 to use abilities; /w name text whispers.");
    await this.helloChat();
    await this.matchmaking.start(this.world.me.id);
    this.start();
    $("world").focus();
  }

  async helloChat() {
    if (!this.link.has("chat")) return this.say("system", "No chat server is running.");
    try {
      const snapshot = await this.chatPanel.hello(this.world.me.id);
      this.social.load(snapshot);
    } catch (error) {
      this.say("error", `Chat: ${error.message || error}`);
    }
  }

  stopCastOnMove() {
    // Moving interrupts a cast on the server; the bar goes at once.
    const me = this.world.me;
    if (me && me.cast) me.cast = null;
  }

  start() {
    if (this.running) return;
    this.running = true;
    let last = performance.now();
    let lastSlow = 0;
    // The simulation runs on a timer (a hidden window's animation frames stop); drawing on frames.
    this.tick = setInterval(() => {
      const now = performance.now();
      this.movement.frame((now - last) / 1000, now);
      last = now;
      if (now - lastSlow >= 100) {
        lastSlow = now;
        this.slowRefresh(now);
      }
    }, 25);
    const draw = () => {
      if (!this.running) return;
      this.renderer.draw(performance.now());
      requestAnimationFrame(draw);
    };
    requestAnimationFrame(draw);
  }

  stop() {
    this.running = false;
    clearInterval(this.tick);
  }

  slowRefresh(now) {
    const me = this.world.me;
    if (!me) return;
    this.combat.refresh(now);
    this.game.refreshPortalAction();
    $("position").textContent = `x ${me.x.toFixed(1)}  z ${me.z.toFixed(1)}`;
    const rtt = this.link && this.link.rtt();
    $("net-info").textContent = `${Object.keys(this.world.entities).length} in view`
      + (rtt !== null && rtt !== undefined ? ` · ${Math.round(rtt * 1000)} ms` : "");
  }

  /** A line in the chat log (system messages, errors). */
  say(kind, text) {
    if (this.chatPanel) this.chatPanel.line(kind, text);
  }

  /** The status line under the ability bar. */
  status(message, error = false) {
    status($("game-status"), message, error);
  }

  startWhisper(name) {
    this.showTab("chat");
    $("chat-channel").value = "whisper";
    $("chat-to").hidden = false;
    $("chat-to").value = name;
    $("chat-input").focus();
  }

  /**
   * A session the page used ended (kicked, replaced, revoked, server gone): say so, and stop playing.
   * `message`: the server's words for it ("disconnected by an operator"), when it said any.
   */
  sessionEnded(reason, roles, message = null) {
    this.state.ended = String(reason);
    this.state.endedMessage = message;
    this.stop();
    if (this.movement) this.movement.frozen = true;
    const banner = $("banner");
    banner.dataset.reason = String(reason);
    const which = roles && roles.length ? `, ${roles.join(", ")}` : "";
    banner.replaceChildren(
      `Session ended — ${message || describeEnd(reason)} (${reason}${which}).`,
      el("button", { type: "button", className: "secondary small", onclick: () => window.location.reload() },
        "Log in again"));
    show(banner, true);
    if (this.link) this.link.close();
  }

  /** Leave the world (world.leave saves), log out of the sessions, back to the characters. */
  async leaveWorld() {
    try {
      await this.link.request("world", "world.leave", {});
    } catch (error) {
      this.status(`Leave: ${error.message || error}`, true);
      if (error.code === "world.save_failed") return;
    }
    this.stop();
    await this.link.close();
    $("chat-log").replaceChildren();
    this.state.chat = [];
    this.world.me = null;
    this.state.me = null;
    await this.account.showCharacters();
  }
}

const app = new App();
window.mmoshardPlay = {
  app,
  state: app.state,
  /** Hold movement keys as if pressed, e.g. walk(["KeyD"]); walk([]) stops. */
  walk: (codes) => app.movement && app.movement.press(codes),
  /** The names of the entities in view. */
  visible: () => Object.values(app.world.entities).map((e) => e.name),
};
