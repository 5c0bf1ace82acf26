// The character in the world: entering (redirects and transfers between nodes included), world.u, corrections, zone changes, instances and encounters (docs/world.md, docs/instances.md).

import { $, el, show, describeError, pretty } from "./dom.js";
import { readUpdate } from "./records.js";

// Within this many metres of an instance entrance the page offers to enter.
const ENTRANCE_REACH = 12;

export class Game {
  constructor(app) {
    this.app = app;
    this.world = app.world;
    this.portalShown = null;
    this.updates = 0;
    const link = app.link;
    link.on("world", "world.u", (body) => this.update(body));
    link.on("world", "world.correct", (body) => {
      app.movement.correct(body);
      if (body.why === "teleport") app.combat.setTarget(null);
    });
    link.on("world", "world.zone", (body) => this.placed(body));
    link.on("world", "world.reset", (body) => this.placed(body));
    link.on("world", "world.transfer", (body) => this.transfer(body));
    link.on("world", "world.transfer_failed", (body) => {
      app.movement.frozen = false;
      app.say("error", `Could not travel to ${body.zone}; you stay here.`);
    });
    link.on("world", "world.kicked", (body) => app.sessionEnded(`world.kicked: ${body.reason}`, ["world"]));
    link.on("world", "world.progress", (body) => this.progress(body));
    link.on("world", "world.instance.refused", (body) => app.say("error",
      `${pretty(body.template)}: ${body.message || body.code}`));
    link.on("world", "world.instance.grace", (body) => app.say("system", body.seconds === null
      ? "You are in the party again: you stay."
      : `You are not in this instance's party: you will be sent out in ${Math.round(body.seconds)} s.`));
    link.on("world", "world.encounter", (body) => this.encounter(body));
    link.on("world", "world.arena.result", (body) => this.arenaResult(body));
    $("leave-button").addEventListener("click", () => app.leaveWorld());
  }

  /** world.enter as `character` (following redirects to the node hosting its zone). */
  async enter(character) {
    const app = this.app;
    let reply = await app.link.request("world", "world.enter", { character_id: character.id });
    for (let hops = 0; reply.redirect && hops < 3; hops++) {
      await app.link.moveWorld(reply.redirect.websocket, app.state.tokens.directory);
      reply = await app.link.request("world", "world.enter", { character_id: character.id });
    }
    if (reply.redirect) throw new Error(`the world keeps redirecting (${reply.redirect.zone})`);
    this.entered(reply);
    return reply;
  }

  entered(reply) {
    const world = this.world;
    world.me = Object.assign(world.me && world.me.id === reply.character_id ? world.me : {}, {
      id: reply.character_id, kind: "p", name: reply.name, cls: reply.class, level: reply.level, exp: reply.exp,
      vx: 0, vz: 0, cast: null,
    });
    this.app.state.me = world.me;
    this.placed(reply);
  }

  /** A place in a zone (world.enter, world.zone, world.reset): the map, where, k, combat state. */
  placed(body) {
    const app = this.app;
    const world = this.world;
    const now = performance.now();
    world.setZone(body.zone);
    Object.assign(world.me, { x: body.x, z: body.z, vx: 0, vz: 0, cast: null });
    app.state.zone = body.zone.id;
    app.movement.placed(body);
    app.movement.frozen = false;
    app.combat.load(body.combat, now);
    const instance = body.zone.id.includes("/");
    $("zone-name").textContent = instance ? `${pretty(body.zone.id.split("/")[0])} (instance)` : pretty(body.zone.id);
    this.portalShown = null;
    show($("encounter"), false);
  }

  update(body) {
    const now = performance.now();
    const update = readUpdate(body);
    const left = this.world.applyUpdate(update, now);
    this.app.combat.left(left);
    if (update.events.length) this.app.combat.apply(update.events, now);
    this.updates++;
  }

  /** world.transfer: the zone is on another node; connect there and enter with the ticket. */
  async transfer(body) {
    const app = this.app;
    app.movement.frozen = true;
    app.say("system", `Travelling to ${pretty(body.zone)}…`);
    try {
      const moved = await app.link.moveWorld(body.websocket, app.state.tokens.directory);
      const reply = await app.link.request("world", "world.enter", { character_id: body.character_id, ticket: body.ticket });
      this.entered(reply);
      if (moved.includes("chat")) await app.helloChat();
      if (moved.includes("matchmaking")) await app.matchmaking.start(body.character_id);
    } catch (error) {
      app.sessionEnded(`transfer to ${body.zone} failed: ${describeError(error)}`, ["world"]);
    }
  }

  progress(body) {
    const me = this.world.me;
    const [level, exp] = body.result || [];
    if (level === undefined) return;
    if (level > me.level) this.app.say("system", `You reached level ${level}!`);
    Object.assign(me, { level, exp });
  }

  encounter(body) {
    const box = $("encounter");
    const pct = body.health_max ? Math.round((100 * body.health) / body.health_max) : 0;
    const words = { pull: "engaged", phase: `phase ${body.phase}`, enrage: "enraged!", reset: "reset", kill: "defeated" };
    box.replaceChildren(el("strong", {}, pretty(body.boss)), ` — ${pct}% `,
      el("span", { className: "hint" }, words[body.event] || `phase ${body.phase}`), body.enraged ? " (enraged)" : "");
    show(box, body.event !== "reset");
    if (body.event === "kill" || body.event === "pull" || body.event === "reset" || body.event === "enrage") {
      this.app.say("system", `${pretty(body.boss)} ${words[body.event]}.`);
    }
    if (body.event === "kill") setTimeout(() => show(box, false), 5000);
  }

  /** world.arena.result {match, instance_id, winner, team, reason, rated, ratings}: the match is over. */
  arenaResult(body) {
    const me = this.world.me;
    const outcome = body.winner === null || body.winner === undefined ? "Draw"
      : body.winner === body.team ? "Victory" : "Defeat";
    const mine = (body.ratings || []).find((r) => me && r.character_id === me.id);
    const rating = mine ? ` Your rating: ${Math.round(mine.rating)}.` : body.rated ? "" : " (not rated)";
    this.app.state.arenaResult = { outcome, reason: body.reason, rating: mine ? mine.rating : null };
    this.app.say("system", `${outcome} (${body.reason}).${rating}`);
    const box = $("encounter");
    box.replaceChildren(el("strong", {}, outcome), ` — ${body.reason}${rating}`);
    show(box, true);
  }

  /** The button over the map: enter a nearby instance entrance, or leave the instance one is in. */
  refreshPortalAction() {
    const world = this.world;
    const me = world.me;
    if (!me || !world.zone) return;
    let action = null;
    if (world.zone.id.includes("/")) {
      action = { label: "Leave the instance", run: () => this.instanceRequest("world.instance.leave", {}) };
    } else {
      const near = world.portalAt(me.x, me.z, ENTRANCE_REACH);
      if (near && near.kind === "instance") {
        action = { label: `Enter ${near.name || pretty(near.to)}`,
          run: () => this.instanceRequest("world.instance.enter", { template: near.to }) };
      }
    }
    const key = action ? action.label : null;
    if (key === this.portalShown) return;
    this.portalShown = key;
    const box = $("portal-action");
    box.replaceChildren();
    if (action) box.append(el("button", { type: "button", onclick: action.run }, action.label));
    show(box, Boolean(action));
  }

  async instanceRequest(type, body) {
    try {
      await this.app.link.request("world", type, body);
    } catch (error) {
      this.app.say("error", describeError(error));
    }
  }
}
