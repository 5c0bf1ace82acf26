// Builds the browser bundle mmoshard/web/static/lib/mmoshard-client.js (one ES module, no
// source map, byte-reproducible); `--check` fails when the committed bundle differs from a fresh build.

import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

export const PACKAGE_DIR = dirname(fileURLToPath(import.meta.url));
export const BUNDLE = join(PACKAGE_DIR, "..", "..", "mmoshard", "web", "static", "lib", "mmoshard-client.js");
// The type declarations go beside it, for TypeScript pages importing /lib/mmoshard-client.js.
export const DECLARATIONS = BUNDLE.replace(/\.js$/, ".d.ts");

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

/** @return the files a build writes: path -> bytes. */
export async function outputs() {
  return new Map([
    [BUNDLE, Buffer.from(await bundle())],
    [DECLARATIONS, await readFile(join(PACKAGE_DIR, "index.d.ts"))],
  ]);
}

/** @return the paths of the committed outputs that differ from a fresh build's (or are missing). */
export async function staleOutputs() {
  const stale = [];
  for (const [path, fresh] of await outputs()) {
    const committed = await readFile(path).catch(() => null);
    if (committed === null || Buffer.compare(fresh, committed) !== 0) stale.push(path);
  }
  return stale;
}

async function main() {
  if (process.argv.includes("--check")) {
    const stale = await staleOutputs();
    if (stale.length) {
      console.error(`stale or missing: ${stale.join(", ")}: run \`npm run build\` in clients/js and commit them`);
      process.exit(1);
    }
    console.log(`${BUNDLE} and its declarations are up to date`);
    return;
  }
  await mkdir(dirname(BUNDLE), { recursive: true });
  for (const [path, bytes] of await outputs()) {
    await writeFile(path, bytes);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
