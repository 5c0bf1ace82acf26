// The browser bundle committed at mmoshard/web/static/lib/mmoshard-client.js is what a fresh
// `npm run build` makes of these sources, and it names nothing of the machine that built it.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { BUNDLE, PACKAGE_DIR, bundle } from "../build.mjs";

test("the committed bundle is up to date with the sources (else: npm run build, and commit it)", async () => {
  const [fresh, committed] = await Promise.all([bundle(), readFile(BUNDLE)]);
  assert.ok(Buffer.compare(Buffer.from(fresh), committed) === 0,
    `${BUNDLE} is stale: run \`npm run build\` in clients/js and commit it`);
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
