// The bag: the character's 64 inventory slots, item use (on the target when there is one), and instance lockouts (docs/combat.md "Items", docs/instances.md).

import { $, el, describeError, newKey, pretty } from "./dom.js";

export const SLOTS = 64;

export class Inventory {
  constructor(app) {
    this.app = app;
    this.slots = new Map(); // slot -> {slot, item, count}
    this.pending = new Map(); // slot -> key of a use not yet answered (resent as is)
    const link = app.link;
    link.on("world", "world.loot", (b) => {
      for (const item of b.items || []) app.say("system", `You receive ${item.count} × ${pretty(item.item)}.`);
      this.load();
    });
    link.on("world", "world.progress", () => this.load());
  }

  async load() {
    try {
      const reply = await this.app.link.request("world", "world.inventory", {});
      this.slots = new Map((reply.slots || []).map((s) => [s.slot, s]));
    } catch (error) {
      return this.app.status(`Bag: ${describeError(error)}`, true);
    }
    this.draw();
  }

  draw() {
    this.app.state.inventory = [...this.slots.values()].map((s) => ({ slot: s.slot, item: s.item, count: s.count }));
    const grid = $("inventory");
    grid.replaceChildren();
    for (let slot = 0; slot < SLOTS; slot++) {
      const held = this.slots.get(slot);
      if (!held) {
        grid.append(el("div", { className: "slot" }));
        continue;
      }
      grid.append(el("button", {
        type: "button", className: "slot filled", title: `${pretty(held.item)} × ${held.count}: click to use`,
        dataset: { slot: String(slot), item: held.item }, onclick: () => this.use(slot),
      }, pretty(held.item), el("span", { className: "count" }, held.count > 1 ? String(held.count) : "")));
    }
  }

  /** world.item.use of one item of `slot`, on the target when one is selected. */
  async use(slot) {
    const app = this.app;
    const held = this.slots.get(slot);
    if (!held) return;
    // One key per use: resending after a lost answer applies it once.
    const key = this.pending.get(slot) || newKey();
    this.pending.set(slot, key);
    const body = { slot, key };
    if (app.state.target !== null) body.target = app.state.target;
    try {
      const reply = await app.link.request("world", "world.item.use", body);
      this.pending.delete(slot);
      app.status(reply.applied ? `Used ${pretty(held.item)}.` : `${pretty(held.item)} was already used.`);
    } catch (error) {
      if (error.code !== "server.unavailable") this.pending.delete(slot);
      if (error.code === "combat.invalid_target" && body.target !== undefined) {
        // Not an item for that target: on oneself.
        delete body.target;
        body.key = newKey();
        try {
          await app.link.request("world", "world.item.use", body);
          app.status(`Used ${pretty(held.item)}.`);
        } catch (again) {
          app.status(`${pretty(held.item)}: ${describeError(again)}`, true);
        }
      } else {
        app.status(`${pretty(held.item)}: ${describeError(error)}`, true);
      }
    }
    await this.load();
  }

  async loadLockouts() {
    const list = $("lockout-list");
    try {
      const reply = await this.app.link.request("world", "world.instance.lockouts", {});
      list.replaceChildren();
      for (const l of reply.lockouts || []) {
        list.append(el("li", {}, el("span", { className: "grow" }, pretty(l.template)),
          el("span", { className: "hint" }, `until ${new Date(l.reset_at * 1000).toLocaleString()}`)));
      }
      if (!(reply.lockouts || []).length) list.append(el("li", { className: "hint" }, "No lockouts."));
    } catch (error) {
      list.replaceChildren(el("li", { className: "hint" }, describeError(error)));
    }
  }
}
