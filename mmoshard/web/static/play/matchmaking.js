// The matchmaking panel (docs/matchmaking.md): mm.hello, queue and leave the queue, the ready check of a proposal, and entering the matched instance with its ticket.

import { $, el, show, status, describeError, pretty, shortTime } from "./dom.js";

// Why a ticket went back to the queue or was removed (docs/matchmaking.md, "Reasons").
const REASONS = {
  declined: "someone declined the ready check", timeout: "the ready check ran out",
  cancelled: "a member left the queue", party_changed: "the party changed", gone: "a member went offline",
  banned: "a member was banned", no_instance: "no server could make the instance",
};

export class Matchmaking {
  constructor(app) {
    this.app = app;
    this.proposal = null;
    this.timer = null;
    this.queues = [];
    this.hello = null; // the mm.hello answer: character, role, queues
    app.state.mm = { state: "idle", ticket: null, queue: null, eta_s: null, match: null, accepted: 0 };
    const link = app.link;
    link.on("matchmaking", "mm.queued", (b) => this.set({ state: "queued", ticket: b.id, queue: b.queue },
      `Your party leader queued you for ${this.title(b.queue)}.`));
    link.on("matchmaking", "mm.proposal", (b) => this.proposed(b));
    link.on("matchmaking", "mm.matched", (b) => this.matched(b));
    link.on("matchmaking", "mm.requeued", (b) => {
      this.closeDialog();
      this.set({ state: "queued", match: null }, `Back in the queue for ${this.title(b.queue)}, in your place: `
        + `${REASONS[b.reason] || b.reason}.`);
    });
    link.on("matchmaking", "mm.removed", (b) => {
      this.closeDialog();
      this.set({ state: "idle", ticket: null, match: null },
        `Out of the queue for ${this.title(b.queue)}: ${REASONS[b.reason] || b.reason}.`);
    });
    $("mm-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.queue();
    });
    $("mm-cancel-button").addEventListener("click", () => this.cancel());
    $("ready-accept").addEventListener("click", () => this.answer(true));
    $("ready-decline").addEventListener("click", () => this.answer(false));
    this.draw();
  }

  title(queue) {
    const known = this.queues.find((q) => q.name === queue);
    return known && known.title ? known.title : pretty(queue);
  }

  set(changes, message, error = false) {
    Object.assign(this.app.state.mm, changes);
    if (message) {
      status($("mm-status"), message, error);
      this.app.say(error ? "error" : "system", message);
    }
    this.draw();
  }

  draw() {
    const mm = this.app.state.mm;
    const available = this.app.link.has("matchmaking") && this.hello !== null;
    $("mm-queue-button").disabled = !available || mm.state !== "idle";
    $("mm-cancel-button").disabled = !available || mm.state === "idle";
    if (!this.app.link.has("matchmaking")) status($("mm-status"), "No matchmaking server is running.");
  }

  /** mm.hello as the character played: the queues, and a ticket or ready check carried over. */
  async start(characterId) {
    this.hello = null;
    this.closeDialog();
    this.app.state.mm = { state: "idle", ticket: null, queue: null, eta_s: null, match: null, accepted: 0 };
    if (!this.app.link.has("matchmaking")) return this.draw();
    let reply;
    try {
      reply = await this.app.link.request("matchmaking", "mm.hello", { character_id: characterId });
    } catch (error) {
      status($("mm-status"), `Matchmaking: ${describeError(error)}`, true);
      return this.draw();
    }
    this.hello = reply;
    this.queues = reply.queues || [];
    const select = $("mm-queue");
    select.replaceChildren(...this.queues.map((q) => el("option", { value: q.name },
      `${q.title || pretty(q.name)}${q.rated ? " (rated)" : ""}`)));
    status($("mm-status"), `Not queued. You play ${reply.role || "your class's role"}.`);
    this.showTicket(reply.ticket);
    if (reply.proposal) this.proposed(reply.proposal);
    this.draw();
  }

  showTicket(ticket) {
    if (ticket) {
      this.set({ state: "queued", ticket: ticket.id, queue: ticket.queue },
        `Queued for ${this.title(ticket.queue)} (${shortTime(ticket.waited_s || 0)} s so far).`);
    } else {
      this.set({ state: "idle", ticket: null });
    }
  }

  async queue() {
    const queue = $("mm-queue").value;
    const roles = [...document.querySelectorAll("input[name=mm-role]:checked")].map((i) => i.value);
    const body = roles.length ? { queue, roles } : { queue };
    try {
      const reply = await this.app.link.request("matchmaking", "mm.queue", body);
      const eta = reply.eta_s !== undefined && reply.eta_s !== null ? ` (usually ${shortTime(reply.eta_s)} s)` : "";
      const ticket = { ticket: reply.ticket, queue: reply.queue, eta_s: reply.eta_s ?? null };
      // The ready check (or the match) may come before this answer: it stays on screen.
      if (this.app.state.mm.state !== "idle" && this.app.state.mm.state !== "queued") return this.set(ticket);
      this.set({ state: "queued", ...ticket }, `Queued for ${this.title(reply.queue)}${eta}.`);
    } catch (error) {
      this.set({}, `Queue: ${describeError(error)}`, true);
    }
  }

  async cancel() {
    try {
      await this.app.link.request("matchmaking", "mm.cancel", {});
      this.closeDialog();
      this.set({ state: "idle", ticket: null, match: null }, "You left the queue.");
    } catch (error) {
      if (error.code === "mm.not_queued") return this.set({ state: "idle", ticket: null, match: null });
      this.set({}, `Leave queue: ${describeError(error)}`, true);
    }
  }

  /** mm.status: where the ticket stands (when the panel opens). */
  async refresh() {
    if (!this.app.link.has("matchmaking") || this.hello === null) return this.draw();
    try {
      const reply = await this.app.link.request("matchmaking", "mm.status", {});
      if (!this.proposal) this.showTicket(reply.ticket);
    } catch (error) {
      this.draw();
    }
  }

  /** mm.proposal {match, queue, team, role, roles, expires_in, accepted}: the ready check. */
  proposed(b) {
    this.proposal = { ...b, received: performance.now() };
    this.set({ state: "proposed", match: b.match, accepted: (b.accepted || []).length });
    const me = this.app.world.me;
    const roster = (b.roles || []).filter((r) => !me || r.character_id !== me.id)
      .map((r) => `${r.name} (${r.role}${b.team !== undefined && r.team !== b.team ? `, other team` : ""})`)
      .join(", ");
    $("ready-check-text").textContent = `${this.title(b.queue)}: you play ${b.role || "your role"}`
      + `${roster ? ` with ${roster}` : ""}. Accept to enter.`;
    show($("ready-check"), true);
    this.app.say("system", `Ready check for ${this.title(b.queue)}: accept or decline.`);
    clearInterval(this.timer);
    const total = (b.expires_in || 20) * 1000;
    this.timer = setInterval(() => {
      const left = total - (performance.now() - this.proposal.received);
      $("ready-check-timer").style.width = `${Math.max(0, (left / total) * 100)}%`;
      if (left <= 0) this.closeDialog();
    }, 100);
  }

  closeDialog() {
    clearInterval(this.timer);
    this.timer = null;
    this.proposal = null;
    show($("ready-check"), false);
  }

  async answer(accept) {
    const proposal = this.proposal;
    if (!proposal) return;
    this.closeDialog();
    try {
      const reply = await this.app.link.request("matchmaking", accept ? "mm.accept" : "mm.decline",
        { match: proposal.match });
      if (accept) {
        this.set({ state: "accepted", accepted: reply.accepted },
          `Accepted (${reply.accepted} of ${reply.total}): waiting for the others.`);
      } else {
        this.set({ state: "idle", ticket: null, match: null }, "You declined: out of the queue.");
      }
    } catch (error) {
      this.set({}, `Ready check: ${describeError(error)}`, true);
    }
  }

  /**
   * mm.matched {match, queue, instance, template, zone, node, endpoints, ticket, team, role}: enter
   * the instance with the ticket through the world session (a copy on another node is reached by
   * the world's own transfer, as any instance entry).
   */
  async matched(b) {
    this.closeDialog();
    this.set({ state: "matched", match: b.match, ticket: null }, `Match ready: entering ${pretty(b.template)}…`);
    try {
      const reply = await this.app.link.request("world", "world.instance.enter", { ticket: b.ticket });
      this.set({ state: "idle", match: null }, `Entered ${pretty(reply.template)}.`);
    } catch (error) {
      this.set({ state: "idle", match: null }, `Entering the match: ${describeError(error)}`, true);
    }
  }
}
