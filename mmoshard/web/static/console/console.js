// The operator console: live views of the shard from the admin site's JSON
// routes, and the operator's actions (docs/clients.md, "The operator console").

import { ApiError, get, login, logout, post, setPastedToken, whenUnauthorized } from "./api.js";
import { SpaceMap, TickChart } from "./map.js";

const $ = (id) => document.getElementById(id);
// How often each view is asked for, in ms: the map at least twice a second.
const EVERY = { overview: 2000, spaces: 400, events: 3000, queues: 3000, maintenance: 5000 };

// What the page shows now: read by the browser tests, never written by them.
const state = {
  session: null, overview: null, spaces: [], silent: [], detail: null, zone: null,
  events: [], queues: null, maintenance: null, lastAction: null, rates: {},
  refreshes: { overview: 0, spaces: 0, events: 0, queues: 0, maintenance: 0 },
};
window.mmoConsole = state;

const timers = [];
let previousCounts = null;  // {at, accepted, errors}

function text(value) {
  return value === null || value === undefined ? "-" : String(value);
}

function when(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(s % 60).padStart(2, "0")}s`;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = text(cell);
    tr.append(td);
  }
  return tr;
}

// --- views -------------------------------------------------------------------

function showOverview(o) {
  state.overview = o;
  $("node-id").textContent = o.node_id;
  $("ccu").textContent = o.ccu;
  $("sessions").textContent = o.sessions;
  let accepted = 0;
  let errors = 0;
  const body = $("processes").querySelector("tbody");
  body.replaceChildren();
  for (const p of o.processes) {
    const counts = p.info.sessions || null;
    if (counts) {
      accepted += counts.accepted;
      errors += counts.errors;
    }
    const load = Object.entries(p.load).map(([k, v]) => `${k} ${v}`).join(", ");
    const endpoints = Object.entries(p.endpoints).map(([k, v]) => `${k} ${v}`).join("  ");
    const tr = row([p.node_id, p.roles.join(", "), load || "-", counts ? counts.live : "-",
                    duration(p.uptime_s), `${p.age_s.toFixed(1)}s ago`, endpoints]);
    tr.dataset.node = p.node_id;
    body.append(tr);
  }
  // Rates from the nodes' counters (each published at its heartbeat).
  if (previousCounts && o.now > previousCounts.at) {
    const dt = o.now - previousCounts.at;
    state.rates = {
      sessions: Math.max(0, accepted - previousCounts.accepted) / dt,
      errors: Math.max(0, errors - previousCounts.errors) / dt,
    };
    $("session-rate").textContent = state.rates.sessions.toFixed(2);
    $("error-rate").textContent = state.rates.errors.toFixed(2);
  }
  if (!previousCounts || accepted !== previousCounts.accepted || errors !== previousCounts.errors
      || o.now - previousCounts.at > 30) {
    previousCounts = { at: o.now, accepted, errors };
  }
  $("maintenance-badge").classList.toggle("hidden", !o.maintenance);
}

function spaceKey(space) {
  return space.zone;
}

function showSpaces(answer) {
  state.spaces = answer.nodes.flatMap((n) => n.spaces.map((s) => ({ ...s, node_id: n.node_id })));
  state.silent = answer.silent;
  for (const n of answer.nodes) {
    for (const s of n.spaces) {
      chart.add(answer.now, s.label, s.tick_ms);
    }
  }
  chart.draw();
  if (state.zone === null && state.spaces.length) {
    const busy = state.spaces.find((s) => s.players > 0) || state.spaces[0];
    state.zone = spaceKey(busy);
  }
  const select = $("space-select");
  const options = state.spaces.map((s) => {
    const option = document.createElement("option");
    option.value = spaceKey(s);
    option.textContent = `${s.zone} @ ${s.node_id}: ${s.players} players, ${s.npcs} NPCs`;
    return option;
  });
  if (document.activeElement !== select) {
    select.replaceChildren(...options);
    select.value = state.zone || "";
  }
  const detail = answer.nodes.map((n) => n.detail).find((d) => d && d.zone === state.zone);
  state.detail = detail || null;
  map.draw(state.detail);
  $("map-info").textContent = detail
    ? `tick ${detail.tick}, ${detail.width}×${detail.depth} m` +
      (answer.silent.length ? `; not answering: ${answer.silent.join(", ")}` : "")
    : "";
  showEntities(detail);
}

// The entities of the space, players first: the list's items are kept
// (updated in place) while their entity stays, so a click always lands.
function showEntities(detail) {
  const list = $("space-entities");
  const entities = detail ? detail.entities : [];
  const ordered = [...entities.filter((e) => e.kind === "p"),
                   ...entities.filter((e) => e.kind !== "p")];
  const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
  ordered.forEach((e, i) => {
    let li = existing.get(String(e.id));
    if (li) {
      existing.delete(String(e.id));
    } else {
      li = document.createElement("li");
      li.dataset.id = e.id;
      li.dataset.kind = e.kind;
      li.className = e.kind === "p" ? "player" : "npc";
      li.addEventListener("click", () => pick(entityById(e.id)));
    }
    li.classList.toggle("selected", e.id === map.selected);
    const hp = e.hp_max ? ` ${e.hp}/${e.hp_max} hp` : "";
    const account = e.account !== null && e.account !== undefined ? `, account ${e.account}` : "";
    const label = `${e.name} (${e.kind === "p" ? "character" : "npc"} ${e.id}${account}) ` +
      `level ${e.level}${hp}${e.dead ? ", dead" : ""} at ${e.x.toFixed(0)}, ${e.z.toFixed(0)}`;
    if (li.textContent !== label) {
      li.textContent = label;
    }
    if (list.children[i] !== li) {
      list.insertBefore(li, list.children[i] || null);
    }
  });
  for (const gone of existing.values()) {
    gone.remove();
  }
}

function entityById(id) {
  return state.detail && state.detail.entities.find((e) => e.id === id);
}

// An entity chosen on the map or in the list: the actions get its ids.
function pick(e) {
  if (!e) {
    return;  // gone since
  }
  map.selected = e.id;
  if (e.kind !== "p") {
    return;
  }
  $("kick-kind").value = "characters";
  $("kick-id").value = e.id;
  $("mute-name").value = e.name;
  if (e.account !== null && e.account !== undefined) {
    $("ban-account").value = e.account;
  }
  map.draw(state.detail);
  showEntities(state.detail);
}

function showEvents(answer) {
  state.events = answer.events;
  const body = $("events").querySelector("tbody");
  body.replaceChildren(...answer.events.map((e) =>
    row([when(e.at), e.account_id, e.kind, e.ip, e.detail])));
}

function showQueues(answer) {
  state.queues = answer;
  const box = $("queues");
  box.classList.remove("dim");
  const queues = Array.isArray(answer) ? answer : answer && answer.queues;
  if (Array.isArray(queues)) {
    const table = document.createElement("table");
    const columns = [...new Set(queues.flatMap((q) => Object.keys(q)))];
    const head = document.createElement("tr");
    for (const c of columns) {
      const th = document.createElement("th");
      th.textContent = c;
      head.append(th);
    }
    table.append(head, ...queues.map((q) => row(columns.map((c) =>
      typeof q[c] === "object" && q[c] !== null ? JSON.stringify(q[c]) : q[c]))));
    box.replaceChildren(table);
  } else {
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(answer, null, 2);
    box.replaceChildren(pre);
  }
}

function showMaintenance(answer) {
  state.maintenance = answer;
  const active = answer.active;
  $("maintenance-state").textContent = active
    ? `open until ${when(active.end)}: ${active.message}`
    : (answer.windows.length ? `next: ${when(answer.windows[0].start)}` : "none scheduled");
  $("maintenance-badge").classList.toggle("hidden", !active);
}

// --- refreshing ----------------------------------------------------------------

async function queues() {
  try {
    showQueues(await get("/matchmaking/queues"));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) {
      throw e;
    }
    state.queues = "not running";
    $("queues").textContent = "not running (no matchmaking role on this node)";
    $("queues").classList.add("dim");
  }
}

// Each view: how it is fetched and shown.
const VIEWS = {
  overview: async () => showOverview(await get("/shard/overview")),
  spaces: async () => {
    const zone = state.zone ? `?zone=${encodeURIComponent(state.zone)}` : "";
    showSpaces(await get(`/shard/spaces${zone}`));
  },
  events: async () => showEvents(await get("/shard/events?limit=30")),
  maintenance: async () => showMaintenance(await get("/shard/maintenance")),
  queues,
};

async function refresh(name) {
  try {
    await VIEWS[name]();
    state.refreshes[name] += 1;
    $("footer").textContent = `refreshed ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("footer").textContent = `${name}: ${e.message}`;
  }
}

function startPolling() {
  stopPolling();
  for (const [name, every] of Object.entries(EVERY)) {
    refresh(name);
    let busy = false;
    timers.push(setInterval(async () => {
      if (busy) {
        return;  // a slow answer is not piled up
      }
      busy = true;
      try {
        await refresh(name);
      } finally {
        busy = false;
      }
    }, every));
  }
}

function stopPolling() {
  while (timers.length) {
    clearInterval(timers.pop());
  }
}

// --- login ------------------------------------------------------------------------

function showLogin(session) {
  stopPolling();
  $("console").classList.add("hidden");
  $("login-panel").classList.remove("hidden");
  $("login-form").classList.toggle("hidden", !session.login_available);
  $("token-form").classList.toggle("hidden", session.login_available);
}

function showConsole(session) {
  state.session = session;
  $("login-panel").classList.add("hidden");
  $("console").classList.remove("hidden");
  const who = session.operator;
  $("operator-name").textContent = who ? `operator ${who.username}` : "loopback: no login";
  $("logout").classList.toggle("hidden", !who);
  startPolling();
}

async function start() {
  const session = await get("/operator/session");
  state.session = session;
  if (session.login_required && !session.operator) {
    showLogin(session);
  } else {
    showConsole(session);
  }
}

whenUnauthorized(async () => {
  const session = await get("/operator/session");
  if (session.login_required && !session.operator) {
    showLogin(session);
  }
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    await login($("login-username").value, $("login-password").value);
    $("login-password").value = "";
    await start();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setPastedToken($("token-input").value.trim());
  await start();
});

$("logout").addEventListener("click", async () => {
  await logout();
  await start();
});

// --- actions ----------------------------------------------------------------------

async function act(what, call) {
  const result = $("action-result");
  result.className = "result";
  result.textContent = `${what}…`;
  try {
    const answer = await call();
    state.lastAction = { what, ok: true, answer };
    result.className = "result ok";
    result.textContent = `${what}: done ${JSON.stringify(answer)}`;
    refresh("events");
  } catch (e) {
    state.lastAction = { what, ok: false, error: e.code || e.message };
    result.className = "result failed";
    result.textContent = `${what}: ${e.message}`;
  }
}

function number(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
}

function onSubmit(id, handler) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler();
  });
}

onSubmit("kick-form", () => {
  const kind = $("kick-kind").value;
  const id = number("kick-id");
  act(`kick ${kind === "characters" ? "character" : "account"} ${id}`,
      () => post(`/${kind}/${id}/kick`, { reason: $("kick-reason").value }));
});

onSubmit("ban-form", () => {
  const id = number("ban-account");
  const hours = number("ban-hours");
  const body = { reason: $("ban-reason").value || "banned by an operator" };
  if (hours) {
    body.duration = hours * 3600;
  }
  act(`ban account ${id}`, () => post(`/accounts/${id}/ban`, body));
});

$("unban-button").addEventListener("click", () => {
  const id = number("ban-account");
  act(`unban account ${id}`, () => post(`/accounts/${id}/unban`, {}));
});

onSubmit("mute-form", () => {
  const name = $("mute-name").value.trim();
  act(`mute ${name}`, () => post("/chat/mute", {
    name, minutes: number("mute-minutes") || 30, reason: $("mute-reason").value }));
});

$("unmute-button").addEventListener("click", () => {
  const name = $("mute-name").value.trim();
  act(`unmute ${name}`, () => post("/chat/unmute", { name }));
});

onSubmit("announce-form", () => {
  act("announce", () => post("/chat/announce", { text: $("announce-text").value }));
});

onSubmit("maintenance-form", () => {
  act("open maintenance", () => post("/shard/maintenance/open", {
    message: $("maintenance-message").value, minutes: number("maintenance-minutes") || 30,
  }).then((answer) => { refresh("maintenance"); return answer; }));
});

$("maintenance-close").addEventListener("click", () => {
  act("close maintenance", () => post("/shard/maintenance/close", {})
    .then((answer) => { refresh("maintenance"); return answer; }));
});

$("space-select").addEventListener("change", (event) => {
  state.zone = event.target.value;
  map.selected = null;
  refresh("spaces");
});

const map = new SpaceMap($("map"), pick);
const chart = new TickChart($("ticks"), $("tick-legend"));

start().catch((e) => {
  $("footer").textContent = `cannot reach the admin site: ${e.message}`;
});
