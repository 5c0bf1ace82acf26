// Combat on the page: targeting, the ability bar with cooldowns, health, resource and cast bars, damage numbers, death and release (docs/combat.md).

import { $, el, show, setBar, describeError, shortTime } from "./dom.js";
import { subjectOf } from "./records.js";
import { typing } from "./movement.js";

export class Combat {
  constructor(app) {
    this.app = app;
    this.world = app.world;
    this.abilities = [];
    this.byNum = new Map();
    this.cooldowns = new Map(); // ability id -> end (ms, performance.now)
    this.gcdEnd = 0;
    this.buttons = [];
    $("release-button").addEventListener("click", () => this.release());
  }

  /** The `combat` field of world.enter / world.zone / world.reset (absent: no combat here). */
  load(combat, now) {
    const me = this.world.me;
    this.cooldowns.clear();
    this.gcdEnd = 0;
    if (!combat) {
      Object.assign(me, { hp: null, hpMax: null, resource: null, resourceMax: null, dead: false });
      this.abilities = [];
    } else {
      Object.assign(me, {
        hp: combat.hp, hpMax: combat.hp_max, resource: combat.resource, resourceMax: combat.resource_max,
        resourceKind: combat.resource_kind, dead: Boolean(combat.dead),
      });
      this.abilities = combat.abilities || [];
      for (const [id, ms] of Object.entries(combat.cooldowns || {})) this.cooldowns.set(id, now + ms);
    }
    this.byNum = new Map(this.abilities.map((a) => [a.num, a]));
    this.app.state.abilities = this.abilities.map((a) => a.id);
    this.buildBar();
    this.setTarget(null);
    this.refresh(now);
  }

  buildBar() {
    const bar = $("ability-bar");
    bar.replaceChildren();
    this.buttons = this.abilities.map((ability, i) => {
      const key = i < 9 ? String(i + 1) : i === 9 ? "0" : "";
      const button = el("button", {
        type: "button", className: "ability", title: `${ability.name}: ${ability.kind} (${ability.target}), `
          + `range ${ability.range} m, cast ${ability.cast_ms / 1000} s, cooldown ${ability.cooldown_ms / 1000} s`,
        dataset: { ability: ability.id }, onclick: () => this.cast(ability),
      }, el("span", { className: "key" }, key), ability.name,
      ability.cost ? el("span", { className: "cost" }, String(ability.cost)) : null,
      el("span", { className: "cd", hidden: true }));
      bar.append(button);
      return button;
    });
  }

  key(event) {
    if (typing(event)) return;
    if (event.code === "Tab") {
      event.preventDefault();
      this.nextTarget();
    } else if (event.code === "Escape") {
      this.setTarget(null);
    } else if (/^Digit[0-9]$/.test(event.code)) {
      const digit = Number(event.code.slice(5));
      const ability = this.abilities[digit === 0 ? 9 : digit - 1];
      if (ability) this.cast(ability);
    }
  }

  /** Click on the canvas: the entity under the pointer becomes the target (or none). */
  click(px, py, now) {
    const renderer = this.app.renderer;
    const p = renderer.toWorld(px, py);
    const picked = this.world.pick(p.x, p.z, 12 / renderer.scale + 1.5, now);
    this.setTarget(picked ? picked.id : null);
  }

  /** Tab: the next living enemy in view, nearest first (NPCs; in a pvp zone, players outside one's party too). */
  nextTarget() {
    const party = this.app.state.party;
    const friends = new Set(party ? party.members.map((m) => m[0]) : []);
    const pvp = Boolean(this.world.zone && this.world.zone.pvp);
    const enemies = this.world.nearest((e) => !e.dead && (e.kind === "n" || (pvp && !friends.has(e.id))));
    if (!enemies.length) return;
    const i = enemies.findIndex((e) => e.id === this.app.state.target);
    this.setTarget(enemies[(i + 1) % enemies.length].id);
  }

  setTarget(id) {
    this.app.state.target = id;
    this.app.renderer.target = id;
    this.refreshTarget(performance.now());
  }

  /** world.cast of `ability` at the current target, as its `target` kind asks. */
  async cast(ability) {
    const app = this.app;
    const me = this.world.me;
    const target = app.state.target !== null ? this.world.entity(app.state.target) : null;
    const body = { ability: ability.id };
    if (ability.target === "enemy" || (ability.target === "ally" && target && target.kind === "p")) {
      if (!target) return app.say("system", `${ability.name} needs a target (click one, or Tab).`);
      body.target = target.id;
    } else if (ability.target === "area" && ability.range > 0 && target) {
      Object.assign(body, { x: target.x, z: target.z });
    }
    const now = performance.now();
    if (ability.gcd_ms) this.gcdEnd = Math.max(this.gcdEnd, now + ability.gcd_ms);
    try {
      const reply = await app.link.request("world", "world.cast", body);
      if (reply.cast_ms > 0) me.cast = { ability: ability.num, start: now, end: now + reply.cast_ms };
    } catch (error) {
      this.gcdEnd = now;
      if (error.code === "combat.on_cooldown" && error.retryAfter) {
        this.cooldowns.set(ability.id, now + error.retryAfter * 1000);
      }
      app.status(`${ability.name}: ${describeError(error)}`, true);
    }
  }

  async release() {
    try {
      const reply = await this.app.link.request("world", "world.release", {});
      this.app.movement.placed(reply);
    } catch (error) {
      this.app.status(`Release: ${describeError(error)}`, true);
    }
  }

  /** The combat records of a world.u (normalised), in order. */
  apply(events, now) {
    const world = this.world;
    const renderer = this.app.renderer;
    const me = world.me;
    for (const r of events) {
      const subject = world.entity(subjectOf(r));
      switch (r.kind) {
        case "cast_start":
          if (subject) subject.cast = { ability: r.ability, start: now, end: now + r.value };
          break;
        case "cast_finish":
        case "cast_interrupt":
          if (subject) subject.cast = null;
          if (r.kind === "cast_finish" && r.a === me.id) this.finished(r.ability, now);
          break;
        case "damage": {
          const text = r.immune ? "immune" : `${r.crit ? "*" : ""}-${r.value}${r.absorbed ? " (absorbed)" : ""}`;
          renderer.float(r.b, text, r.b === me.id ? "#ff6b5b" : "#ffe066", now);
          // What the page last dealt and took (the tests read them).
          if (r.a === me.id) this.app.state.lastHit = { source: r.a, target: r.b, amount: r.value, crit: r.crit };
          if (r.b === me.id) this.app.state.lastHurt = { source: r.a, target: r.b, amount: r.value, crit: r.crit };
          break;
        }
        case "heal":
          renderer.float(r.b, `+${r.value}`, "#7cff7c", now);
          break;
        case "health":
          if (subject) Object.assign(subject, { hp: r.value, hpMax: r.b });
          break;
        case "death":
          if (subject) Object.assign(subject, { dead: true, hp: 0, cast: null });
          if (r.b === me.id) this.app.say("system", "You died.");
          if (r.b === this.app.state.target && subject && subject.kind === "n") this.app.state.lastKill = r.b;
          break;
        case "revive":
          if (subject) Object.assign(subject, { dead: false, hp: r.value });
          break;
        case "resource":
          if (r.a === me.id) Object.assign(me, { resource: r.value, resourceMax: r.b });
          break;
        case "evade":
          if (subject) subject.evading = r.value === 1;
          break;
        default:
          break;
      }
    }
  }

  /** One of my casts finished: its cooldown starts. */
  finished(num, now) {
    const ability = this.byNum.get(num);
    if (ability && ability.cooldown_ms) this.cooldowns.set(ability.id, now + ability.cooldown_ms);
  }

  /** An entity that left the view is no target any more. */
  left(ids) {
    if (ids.includes(this.app.state.target)) this.setTarget(null);
  }

  /** Bars, cooldowns and the death overlay (called ten times a second). */
  refresh(now) {
    const me = this.world.me;
    if (!me) return;
    $("player-name").textContent = me.name;
    $("player-level").textContent = `level ${me.level}`;
    setBar($("player-hp"), $("player-hp-text"), me.hp ?? 1, me.hpMax ?? 1, me.hp === null ? "—" : undefined);
    const resource = $("player-resource").parentElement;
    resource.className = `bar resource ${me.resourceKind || ""}`;
    setBar($("player-resource"), $("player-resource-text"), me.resource ?? 0, me.resourceMax ?? 1,
      me.resource === null || me.resource === undefined ? "—" : `${me.resource} / ${me.resourceMax} ${me.resourceKind}`);
    show($("dead-overlay"), Boolean(me.dead));
    const cast = me.cast && me.cast.end > now ? me.cast : null;
    show($("player-cast"), Boolean(cast));
    if (cast) {
      const ability = this.byNum.get(cast.ability);
      setBar($("player-cast-fill"), $("player-cast-text"), now - cast.start, cast.end - cast.start,
        `${ability ? ability.name : "casting"} ${shortTime((cast.end - now) / 1000)}`);
    }
    this.abilities.forEach((ability, i) => {
      const button = this.buttons[i];
      const ends = Math.max(this.cooldowns.get(ability.id) || 0, ability.gcd_ms ? this.gcdEnd : 0);
      const overlay = button.querySelector(".cd");
      const left = (ends - now) / 1000;
      show(overlay, left > 0);
      if (left > 0) overlay.textContent = shortTime(left);
      button.classList.toggle("casting", Boolean(cast && cast.ability === ability.num));
      button.disabled = Boolean(me.dead);
    });
    this.refreshTarget(now);
  }

  refreshTarget(now) {
    const id = this.app.state.target;
    const target = id !== null ? this.world.entity(id) : null;
    show($("target-frame"), Boolean(target));
    if (!target) return;
    $("target-name").textContent = target.name + (target.dead ? " (dead)" : target.evading ? " (evading)" : "");
    $("target-level").textContent = target.level ? `level ${target.level}` : "";
    setBar($("target-hp"), $("target-hp-text"), target.hp ?? 1, target.hpMax ?? 1,
      target.hp === null || target.hp === undefined ? "—" : undefined);
    const cast = target.cast && target.cast.end > now ? target.cast : null;
    show($("target-cast"), Boolean(cast));
    if (cast) {
      setBar($("target-cast-fill"), $("target-cast-text"), now - cast.start, cast.end - cast.start,
        `casting ${shortTime((cast.end - now) / 1000)}`);
    }
  }
}
