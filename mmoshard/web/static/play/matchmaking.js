// The matchmaking panel (mm.*): queue, leave the queue, status, the ready check of a proposal, and entering the matched instance with its ticket.

import { $, show, status, describeError, pretty, shortTime } from "./dom.js";

export class Matchmaking {
  constructor(app) {
    this.app = app;
    this.proposal = null;
    this.timer = null;
    const link = app.link;
    app.state.mm = { state: "idle", ticket: null, queue: null, eta_s: null, match: null, instance: null };
    link.on("matchmaking", "mm.proposal", (b) => this.proposed(b));
    link.on("matchmaking", "mm.matched", (b) => this.matched(b));
    link.on("matchmaking", "mm.requeued", (b) => {
      this.closeDialog();
      this.set({ state: "queued", match: null }, `Back in the queue: ${b.reason || "someone did not accept"}.`);
    });
    link.on("matchmaking", "mm.removed", (b) => {
      this.closeDialog();
      this.set({ state: "idle", ticket: null, match: null }, `Removed from the queue: ${b.reason || "no reason given"}.`);
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
    const available = this.app.link.has("matchmaking");
    $("mm-queue-button").disabled = !available || mm.state !== "idle";
    $("mm-cancel-button").disabled = !available || mm.state === "idle";
    if (!available) status($("mm-status"), "No matchmaking server is running.");
  }

  async queue() {
    const queue = $("mm-queue").value;
    const roles = [...document.querySelectorAll("input[name=mm-role]:checked")].map((i) => i.value);
    const body = roles.length ? { queue, roles } : { queue };
    try {
      const reply = await this.app.link.request("matchmaking", "mm.queue", body);
      const eta = reply.eta_s !== undefined && reply.eta_s !== null ? ` (about ${shortTime(reply.eta_s)} s)` : "";
      this.set({ state: "queued", ticket: reply.ticket, queue: reply.queue, eta_s: reply.eta_s },
        `Queued for ${pretty(reply.queue || queue)}${eta}.`);
    } catch (error) {
      this.set({}, `Queue: ${describeError(error)}`, true);
    }
  }

  async cancel() {
    try {
      await this.app.link.request("matchmaking", "mm.cancel", {});
      this.set({ state: "idle", ticket: null, match: null }, "You left the queue.");
    } catch (error) {
      this.set({}, `Leave queue: ${describeError(error)}`, true);
    }
  }

  /** mm.status: where the ticket stands (after a reconnect, say). */
  async refresh() {
    if (!this.app.link.has("matchmaking")) return this.draw();
    try {
      const reply = await this.app.link.request("matchmaking", "mm.status", {});
      if (reply && reply.ticket) {
        this.set({ state: reply.match ? "proposed" : "queued", ticket: reply.ticket, queue: reply.queue,
          eta_s: reply.eta_s ?? null }, `Queued for ${pretty(reply.queue)}.`);
      } else {
        this.set({ state: "idle", ticket: null });
      }
    } catch (error) {
      // No ticket, or no matchmaking here: the panel says what it can.
      this.draw();
    }
  }

  /** mm.proposal {match, queue, team, roles, expires_in}: the ready check. */
  proposed(b) {
    this.proposal = { ...b, received: performance.now() };
    this.set({ state: "proposed", match: b.match });
    const roles = b.roles && typeof b.roles === "object" ? Object.values(b.roles).flat().join(", ") : "";
    $("ready-check-text").textContent = `A group for ${pretty(b.queue)} is ready${roles ? ` (${roles})` : ""}. `
      + "Accept to enter.";
    show($("ready-check"), true);
    this.app.say("system", `Ready check for ${pretty(b.queue)}: accept or decline.`);
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
      await this.app.link.request("matchmaking", accept ? "mm.accept" : "mm.decline", { match: proposal.match });
      this.set({ state: accept ? "accepted" : "idle", match: accept ? proposal.match : null },
        accept ? "Accepted: waiting for the others." : "You declined.");
    } catch (error) {
      this.set({}, `Ready check: ${describeError(error)}`, true);
    }
  }

  /** mm.matched {match, instance, endpoints, ticket}: enter the instance with the ticket. */
  async matched(b) {
    this.closeDialog();
    this.set({ state: "matched", instance: b.instance, match: b.match, ticket: null }, "Match found: entering…");
    try {
      const reply = await this.app.link.request("world", "world.instance.enter", { ticket: b.ticket });
      this.set({ state: "idle", match: null }, `Entered ${pretty(reply.template)}.`);
    } catch (error) {
      this.set({ state: "idle", match: null }, `Entering the match: ${describeError(error)}`, true);
    }
  }
}
