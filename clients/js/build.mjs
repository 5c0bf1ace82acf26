// Builds the browser bundle mmoshard/web/static/lib/mmoshard-client.js (one ES module, no
// source map, byte-reproducible); `--check` fails when the committed bundle differs from a fresh build.

import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

export const PACKAGE_DIR = dirname(fileURLToPath(import.meta.url));
export const BUNDLE = join(PACKAGE_DIR, "..", "..", "mmoshard", "web", "static", "lib", "mmoshard-client.js");

const BANNER = "// mmoshard-client: the JavaScript client of the mmoshard session protocol (docs/clients.md).\n"
  + "// Generated from clients/js by `npm run build` (esbuild); do not edit. Bundles @msgpack/msgpack (ISC).";

/** @return the bundle's bytes (a Uint8Array), built in memory. */
export async function bundle() {
  const result = await esbuild.build({
    absWorkingDir: PACKAGE_DIR,
    entryPoints: ["src/index.js"],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    charset: "utf8",
    legalComments: "eof",
    sourcemap: false,
    minify: false,
    banner: { js: BANNER },
    write: false,
    outfile: BUNDLE,
    logLevel: "warning",
  });
  return result.outputFiles[0].contents;
}

/** @return whether the committed bundle is what a fresh build makes. */
export async function isFresh() {
  const [fresh, committed] = await Promise.all([bundle(), readFile(BUNDLE).catch(() => null)]);
  return committed !== null && Buffer.compare(Buffer.from(fresh), committed) === 0;
}

async function main() {
  if (process.argv.includes("--check")) {
    if (!(await isFresh())) {
      console.error(`${BUNDLE} is stale (or missing): run \`npm run build\` in clients/js and commit it`);
      process.exit(1);
    }
    console.log(`${BUNDLE} is up to date`);
    return;
  }
  await mkdir(dirname(BUNDLE), { recursive: true });
  await writeFile(BUNDLE, await bundle());
  console.log(`wrote ${BUNDLE}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
