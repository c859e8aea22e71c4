// Serves the reference page and the browser tests' pages on 127.0.0.1 (a free
// port unless PORT is set) and prints the page's URL. The page reads its API's
// origin from this origin's `config.json` (UPLOAD_API; without it, the page's own
// origin; and UPLOAD_PART_DIGEST=md5 where the store verifies no SHA-256) and its token from `session` (UPLOAD_TOKEN), as a marketplace's gateway
// would hand out the signed-in seller's token: never from the page's URL, and the
// page keeps it in memory only. This server is for a developer's machine and the
// tests: it serves the one token it was given to whoever asks on 127.0.0.1.
// Usage: npm run build, then UPLOAD_API=https://127.0.0.1:50051 UPLOAD_TOKEN=… node serve.mjs

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };
const json = (res, status, body) =>
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body));

/** Starts the server: `api` and `partDigest` for config.json, `token` for the session endpoint (401 without). */
export function serve({ port = 0, api, token, partDigest } = {}) {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (path === "/config.json") return json(res, 200, { ...(api ? { api } : {}), ...(partDigest ? { partDigest } : {}) });
    if (path === "/session") return token ? json(res, 200, { token }) : json(res, 401, { error: "not signed in" });
    const file = join(root, path === "/" ? "index.html" : path);
    const allowed = path === "/" || path === "/index.html" || ["/dist/browser/", "/test/browser/"].some((p) => path.startsWith(p));
    if (!file.startsWith(root) || !allowed) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[extname(file)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await serve({
    port: Number(process.env.PORT || 0),
    api: process.env.UPLOAD_API,
    token: process.env.UPLOAD_TOKEN,
    partDigest: process.env.UPLOAD_PART_DIGEST,
  });
  console.log(`http://127.0.0.1:${server.address().port}/`);
}
