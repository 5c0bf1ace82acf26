// The browser bundle committed at mmoshard/web/static/lib/mmoshard-client.js is what a fresh
// `npm run build` makes of these sources, and it names nothing of the machine that built it.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { PACKAGE_DIR, bundle, staleOutputs } from "../build.mjs";
import * as library from "../src/index.js";

test("the committed bundle and declarations are up to date (else: npm run build, and commit them)", async () => {
  assert.deepEqual(await staleOutputs(), [], "stale: run `npm run build` in clients/js and commit");
});

test("index.d.ts declares every export of the library, and nothing else", async () => {
  const text = (await readFile(`${PACKAGE_DIR}/index.d.ts`)).toString();
  const declared = [...text.matchAll(/^export (?:function|const|class) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(declared)].sort(), Object.keys(library).sort());
});

test("the bundle is reproducible: two builds are the same bytes, with no path or source map in them", async () => {
  const [one, two] = await Promise.all([bundle(), bundle()]);
  assert.ok(Buffer.compare(Buffer.from(one), Buffer.from(two)) === 0);
  const text = Buffer.from(one).toString();
  assert.ok(!text.includes(PACKAGE_DIR), "the build directory is in the bundle");
  assert.ok(!text.includes("sourceMappingURL"));
  assert.match(text, /^\/\/ mmoshard-client/);
  assert.match(text, /export \{/);
});
