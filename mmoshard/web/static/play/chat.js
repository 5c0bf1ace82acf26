// The chat panel: the zone channel, party chat, whispers, announcements and system lines (docs/chat.md).

import { $, el, describeError } from "./dom.js";

const MAX_LINES = 200;

export class Chat {
  constructor(app) {
    this.app = app;
    this.zoneChannel = null;
    this.channels = new Set();
    const link = app.link;
    link.on("chat", "chat.whisper", (b) => this.line("whisper", `[${b.from_name}] whispers: ${b.text}`,
      { from: b.from_name, message: b.text }));
    link.on("chat", "chat.channel.message", (b) => this.channelLine(b));
    link.on("chat", "chat.party.message", (b) => this.line("party", `[Party] ${b.from_name}: ${b.text}`,
      { from: b.from_name, message: b.text }));
    link.on("chat", "chat.announcement", (b) => this.line("system", `[Announcement] ${b.text}`, { message: b.text }));
    link.on("chat", "chat.channel.joined", (b) => this.joined(b.channel, b.history));
    link.on("chat", "chat.channel.left", (b) => this.leftChannel(b.channel));
    link.on("chat", "chat.muted", (b) => this.line("error", `You are muted${b.reason ? ` (${b.reason})` : ""} until `
      + new Date(b.until * 1000).toLocaleTimeString()));
    link.on("chat", "chat.unmuted", () => this.line("system", "You may speak again."));
    link.on("chat", "chat.replaced", () => this.line("error", "Your chat moved to another connection."));
    $("chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("chat-channel").addEventListener("change", () => {
      $("chat-to").hidden = $("chat-channel").value !== "whisper";
    });
  }

  /** chat.hello as the character played; @return the snapshot (friends, party, zone channel...). */
  async hello(characterId) {
    const snapshot = await this.app.link.request("chat", "chat.hello", { character_id: characterId });
    this.channels = new Set(snapshot.channels || []);
    if (snapshot.zone_channel) this.joined(snapshot.zone_channel, snapshot.zone_history, false);
    for (const h of snapshot.party_history || []) this.historyLine("party", h);
    if (snapshot.muted_until && snapshot.muted_until * 1000 > Date.now()) {
      this.line("error", `You are muted until ${new Date(snapshot.muted_until * 1000).toLocaleTimeString()}.`);
    }
    return snapshot;
  }

  joined(channel, history, announce = true) {
    if (channel.startsWith("zone:")) {
      this.zoneChannel = channel;
      this.app.state.zoneChannel = channel;
    }
    this.channels.add(channel);
    for (const h of history || []) this.historyLine(channel.startsWith("zone:") ? "zone" : "channel", h, channel);
    if (announce) this.line("system", `Joined ${channel}.`);
  }

  leftChannel(channel) {
    this.channels.delete(channel);
    if (channel === this.zoneChannel) this.zoneChannel = null;
  }

  historyLine(kind, h, channel) {
    const name = channel && !channel.startsWith("zone:") ? `[${channel}] ` : kind === "party" ? "[Party] " : "";
    this.line(kind, `${name}${h.from_name}: ${h.text}`, { from: h.from_name, message: h.text, history: true });
  }

  channelLine(b) {
    const zone = b.channel.startsWith("zone:");
    this.line(zone ? "zone" : "channel", `${zone ? "" : `[${b.channel}] `}${b.from_name}: ${b.text}`,
      { from: b.from_name, message: b.text, channel: b.channel });
  }

  /** A line in the log (and in the page state the tests read): `text` as shown, `extra` {from, message, ...}. */
  line(kind, text, extra = {}) {
    const entry = { ...extra, kind, text, at: Date.now() };
    const log = this.app.state.chat;
    log.push(entry);
    if (log.length > MAX_LINES) log.shift();
    const list = $("chat-log");
    list.append(el("li", { className: kind, dataset: { kind } }, text));
    while (list.children.length > MAX_LINES) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  /** The input line: "/w name text", "/p text", "/z text", or the selected channel. */
  submit() {
    const input = $("chat-input");
    let text = input.value.trim();
    if (!text) return;
    let kind = $("chat-channel").value;
    let to = $("chat-to").value.trim();
    const command = /^\/(\w+)\s*(.*)$/.exec(text);
    if (command) {
      const [, verb, rest] = command;
      if (verb === "w" || verb === "whisper" || verb === "tell") {
        const space = rest.indexOf(" ");
        if (space < 0) return this.line("error", "Usage: /w name text");
        kind = "whisper";
        to = rest.slice(0, space);
        text = rest.slice(space + 1).trim();
      } else if (verb === "p" || verb === "party") {
        kind = "party";
        text = rest;
      } else if (verb === "z" || verb === "s" || verb === "say") {
        kind = "zone";
        text = rest;
      } else {
        return this.line("error", `Unknown command /${verb} (try /w, /p, /z).`);
      }
    }
    input.value = "";
    if (kind === "whisper") return this.whisper(to, text);
    if (kind === "party") return this.partySay(text);
    return this.zoneSay(text);
  }

  async whisper(to, text) {
    if (!to) return this.line("error", "Whisper to whom?");
    try {
      await this.app.link.request("chat", "chat.whisper", { to, text });
      this.line("whisper", `To [${to}]: ${text}`, { to, message: text, outgoing: true });
    } catch (error) {
      this.line("error", `Whisper to ${to}: ${describeError(error)}`);
    }
  }

  async partySay(text) {
    try {
      await this.app.link.request("chat", "chat.party.say", { text });
      this.line("party", `[Party] ${this.app.world.me.name}: ${text}`, { from: this.app.world.me.name, message: text });
    } catch (error) {
      this.line("error", `Party: ${describeError(error)}`);
    }
  }

  async zoneSay(text) {
    if (!this.zoneChannel) return this.line("error", "You are in no zone channel.");
    try {
      await this.app.link.request("chat", "chat.channel.say", { channel: this.zoneChannel, text });
      this.line("zone", `${this.app.world.me.name}: ${text}`, { from: this.app.world.me.name, message: text });
    } catch (error) {
      this.line("error", describeError(error));
    }
  }
}
