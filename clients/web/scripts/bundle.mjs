// Bundles with esbuild: the library for pages that load one file
// (dist/upload-web.min.js), the hashing worker a WorkerHasher starts
// (dist/browser/hash-worker.js), the reference page (dist/browser/page.js, which
// index.html loads), and the browser test pages' scripts
// (dist/browser/engine-page.js; uppy-page.js with its CSS).

import { build } from "esbuild";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning" };
await Promise.all([
  build({ ...common, entryPoints: [join(pkg, "src/index.ts")], outfile: join(pkg, "dist/upload-web.min.js"), minify: true }),
  build({ ...common, entryPoints: [join(pkg, "src/hash-worker.ts")], outfile: join(pkg, "dist/browser/hash-worker.js") }),
  build({ ...common, entryPoints: [join(pkg, "page/app.ts")], outfile: join(pkg, "dist/browser/page.js") }),
  build({ ...common, entryPoints: [join(pkg, "test/browser/engine-page.ts")], outfile: join(pkg, "dist/browser/engine-page.js") }),
  build({ ...common, entryPoints: [join(pkg, "test/browser/uppy-page.ts")], outfile: join(pkg, "dist/browser/uppy-page.js") }),
]);
// With --stamp (the last step of `npm run build`, after tsc): the whole build's
// stamp, which the Rust suite's harness compares with the sources to build again
// only when they changed. A bundle alone leaves it as it was.
if (process.argv.includes("--stamp")) writeFileSync(join(pkg, "dist/.built"), `${new Date().toISOString()}\n`);
