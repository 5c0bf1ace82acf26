// Small DOM helpers shared by the play client's modules.

/** The element with id `id` (throws when the page lacks it: a bug). */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/** A new element: el("li", {className: "x", onclick: f}, "text", child, ...). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Show `node` (or hide it when `visible` is false). */
export function show(node, visible = true) {
  node.hidden = !visible;
}

/** Write `message` in the status line `node`, as an error when `error`. */
export function status(node, message, error = false) {
  node.textContent = message || "";
  node.classList.toggle("error", Boolean(error));
}

/** A bar's fill (0..1) and its text. */
export function setBar(fill, label, value, max, text) {
  const ratio = max > 0 ? Math.max(0, Math.min(1, value / max)) : 0;
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  if (label) label.textContent = text ?? `${Math.round(value)} / ${Math.round(max)}`;
}

/** What an error from the server (the library's RequestError: code, message, fields) says to a player. */
export function describeError(error) {
  if (!error) return "unknown error";
  const code = error.code;
  let message = error.message || String(error);
  if (error.fields && typeof error.fields === "object") {
    const details = Object.entries(error.fields).map(([field, why]) => `${field}: ${why}`).join("; ");
    if (details) message = `${message} (${details})`;
  }
  return code && !message.includes(code) ? `${message} [${code}]` : message;
}

/** A fresh idempotency key for a request that changes something (item use, ...). */
export function newKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** "minor_healing_potion" -> "Minor healing potion". */
export function pretty(id) {
  const text = String(id ?? "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Seconds, shortly: 75 -> "1:15", 4.2 -> "4.2". */
export function shortTime(seconds) {
  if (seconds >= 60) return `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, "0")}`;
  return seconds >= 10 ? String(Math.ceil(seconds)) : seconds.toFixed(1);
}
