// The social panel: friends with presence and requests, the party with its invites (docs/chat.md).

import { $, el, show, describeError } from "./dom.js";

export class Social {
  constructor(app) {
    this.app = app;
    this.friends = new Map(); // character id -> {character_id, name, state, status, text}
    this.incoming = new Map(); // character id -> name
    this.presence = new Map(); // character id -> state (party members too)
    this.invite = null;
    const link = app.link;
    link.on("chat", "chat.presence", (b) => this.presenceChanged(b));
    link.on("chat", "chat.friend.requested", (b) => {
      this.incoming.set(b.character_id, b.name);
      app.say("system", `${b.name} wants to be your friend (Social tab).`);
      this.draw();
    });
    link.on("chat", "chat.friend.added", (b) => {
      this.friends.set(b.character_id, b);
      this.presence.set(b.character_id, b.state);
      app.say("system", `${b.name} is now your friend.`);
      this.draw();
    });
    link.on("chat", "chat.friend.removed", (b) => {
      this.friends.delete(b.character_id);
      this.draw();
    });
    link.on("chat", "chat.party.invited", (b) => this.invited(b));
    link.on("chat", "chat.party.declined", (b) => app.say("system", `${b.name} declined your invitation.`));
    link.on("chat", "chat.party.update", (b) => this.partyUpdate(b));
    $("friend-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.addFriend($("friend-name").value.trim());
    });
    $("party-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.inviteToParty($("party-invite-name").value.trim());
    });
    $("party-leave").addEventListener("click", () => this.call("chat.party.leave", {}, "Leave party"));
    $("party-invite-accept").addEventListener("click", () => this.answerInvite(true));
    $("party-invite-decline").addEventListener("click", () => this.answerInvite(false));
  }

  /** What chat.hello said: friends, requests, the party. */
  load(snapshot) {
    this.friends = new Map((snapshot.friends || []).map((f) => [f.character_id, f]));
    this.incoming = new Map((snapshot.incoming || []).map((r) => [r.character_id, r.name]));
    for (const f of this.friends.values()) this.presence.set(f.character_id, f.state);
    this.setParty(snapshot.party || null);
    if (snapshot.party) this.loadPartyPresence();
  }

  async loadPartyPresence() {
    try {
      const info = await this.app.link.request("chat", "chat.party.info", {});
      for (const [cid, p] of Object.entries(info.presence || {})) this.presence.set(Number(cid), p.state);
      this.draw();
    } catch (error) {
      // Presence events fill it in as members come and go.
    }
  }

  presenceChanged(b) {
    this.presence.set(b.character_id, b.state);
    const friend = this.friends.get(b.character_id);
    if (friend) {
      if (friend.state !== b.state && (b.state === "online" || b.state === "offline")) {
        this.app.say("system", `${b.name} is ${b.state}.`);
      }
      Object.assign(friend, b);
    }
    this.draw();
  }

  setParty(party) {
    this.app.state.party = party;
    this.draw();
  }

  partyUpdate(b) {
    const before = this.app.state.party;
    this.setParty(b.party);
    const who = b.party && b.party.members.find(([cid]) => cid === b.character_id);
    const name = who ? who[1] : "someone";
    const words = {
      created: "You formed a party.", joined: `${name} joined the party.`, left: `${name} left the party.`,
      kicked: `${name} was removed from the party.`, promoted: `${name} leads the party.`,
      leader_changed: `${name} leads the party.`, disbanded: "The party was disbanded.",
    };
    if (!b.party && before) this.app.say("party", b.event === "disbanded" ? words.disbanded : "You left the party.");
    else if (words[b.event]) this.app.say("party", words[b.event]);
  }

  invited(b) {
    this.invite = b;
    this.app.state.partyInvite = { party_id: b.party_id, from: b.from_name };
    $("party-invite-text").textContent = `${b.from_name} invites you to a party `
      + `(${(b.members || []).map((m) => m[1]).join(", ") || b.from_name}).`;
    show($("party-invite"), true);
    this.app.say("party", `${b.from_name} invites you to a party.`);
    const expires = (b.expires_in || 60) * 1000;
    setTimeout(() => {
      if (this.invite === b) this.closeInvite();
    }, expires);
  }

  closeInvite() {
    this.invite = null;
    this.app.state.partyInvite = null;
    show($("party-invite"), false);
  }

  async answerInvite(accept) {
    const invite = this.invite;
    if (!invite) return;
    this.closeInvite();
    await this.call(accept ? "chat.party.accept" : "chat.party.decline", { party_id: invite.party_id },
      accept ? "Join party" : "Decline");
  }

  async inviteToParty(name) {
    if (!name) return;
    if (await this.call("chat.party.invite", { name }, `Invite ${name}`)) {
      $("party-invite-name").value = "";
      this.app.say("party", `You invited ${name}.`);
    }
  }

  async addFriend(name) {
    if (!name) return;
    const reply = await this.call("chat.friend.request", { name }, `Befriend ${name}`);
    if (!reply) return;
    $("friend-name").value = "";
    this.app.say("system", reply.status === "accepted" ? `${reply.name} is now your friend.`
      : `Friend request sent to ${reply.name}.`);
    if (reply.status === "accepted") await this.reload();
  }

  async reload() {
    try {
      const listing = await this.app.link.request("chat", "chat.friend.list", {});
      this.load({ ...listing, party: this.app.state.party });
    } catch (error) {
      this.app.say("error", `Friends: ${describeError(error)}`);
    }
  }

  /** Request `type`; a refusal goes to the chat log. @return the reply, or null. */
  async call(type, body, what) {
    try {
      return await this.app.link.request("chat", type, body);
    } catch (error) {
      this.app.say("error", `${what}: ${describeError(error)}`);
      return null;
    }
  }

  draw() {
    const state = this.app.state;
    state.friends = [...this.friends.values()].map((f) => ({ id: f.character_id, name: f.name, state: f.state }));
    const list = $("friend-list");
    list.replaceChildren();
    for (const f of this.friends.values()) {
      list.append(el("li", { dataset: { friend: f.name, state: f.state } },
        el("span", { className: `presence ${f.state} ${f.status || ""}`, title: f.state }),
        el("span", { className: "grow" }, f.name, f.text ? el("span", { className: "hint" }, ` — ${f.text}`) : null),
        el("button", { type: "button", className: "secondary small", title: "whisper",
          onclick: () => this.app.startWhisper(f.name) }, "/w"),
        el("button", { type: "button", className: "secondary small", title: "invite to your party",
          onclick: () => this.inviteToParty(f.name) }, "+party"),
        el("button", { type: "button", className: "secondary small", title: "remove",
          onclick: async () => {
            if (await this.call("chat.friend.remove", { character_id: f.character_id }, "Remove")) {
              this.friends.delete(f.character_id);
              this.draw();
            }
          } }, "×")));
    }
    const requests = $("friend-requests");
    requests.replaceChildren();
    for (const [cid, name] of this.incoming) {
      const answer = async (accept) => {
        const reply = await this.call(accept ? "chat.friend.accept" : "chat.friend.decline", { character_id: cid }, name);
        this.incoming.delete(cid);
        if (reply && accept) this.friends.set(cid, { character_id: cid, name, ...reply });
        this.draw();
      };
      requests.append(el("li", {}, el("span", { className: "grow" }, `${name} asks to be friends`),
        el("button", { type: "button", className: "small", onclick: () => answer(true) }, "Accept"),
        el("button", { type: "button", className: "secondary small", onclick: () => answer(false) }, "Decline")));
    }
    this.drawParty();
  }

  drawParty() {
    const party = this.app.state.party;
    const list = $("party-list");
    list.replaceChildren();
    show($("party-leave"), Boolean(party));
    if (!party) {
      list.append(el("li", { className: "hint" }, "Not in a party: invite someone."));
      return;
    }
    const me = this.app.world.me;
    const leading = me && party.leader === me.id;
    for (const [cid, name] of party.members) {
      const state = me && cid === me.id ? "online" : this.presence.get(cid) || "offline";
      list.append(el("li", { dataset: { member: name } },
        el("span", { className: `presence ${state}`, title: state }),
        el("span", { className: "grow" }, name, cid === party.leader ? " ★" : ""),
        leading && cid !== me.id ? el("button", { type: "button", className: "secondary small",
          onclick: () => this.call("chat.party.promote", { character_id: cid }, "Promote") }, "lead") : null,
        leading && cid !== me.id ? el("button", { type: "button", className: "secondary small",
          onclick: () => this.call("chat.party.kick", { character_id: cid }, "Kick") }, "kick") : null));
    }
  }
}
