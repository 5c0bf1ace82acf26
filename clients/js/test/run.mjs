// Runs the library's tests with `node --test`, one file at a time (each starts its own node),
// with the WebSocket the Node version offers (--experimental-websocket on Node 20 and 21).

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => join(here, f));
const [major, minor] = process.versions.node.split(".").map(Number);
const args = [];
if (typeof globalThis.WebSocket === "undefined"
    && process.allowedNodeEnvironmentFlags.has("--experimental-websocket")) {
  args.push("--experimental-websocket");
  if (process.allowedNodeEnvironmentFlags.has("--disable-warning")) {
    args.push("--disable-warning=ExperimentalWarning");
  }
}
args.push("--test");
if (major > 20 || (major === 20 && minor >= 10)) args.push("--test-concurrency=1");
const result = spawnSync(process.execPath, [...args, ...process.argv.slice(2), ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);
