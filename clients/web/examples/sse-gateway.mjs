// A web gateway on the package's Node transport: browsers follow an upload's or
// an item's progress as Server-Sent Events (GET /events/uploads/:id,
// GET /events/items/:id, proto3 JSON in each `data:`), while the gateway calls
// the service over gRPC as a service acting for the signed-in seller. A stream
// ends when the browser goes, when what it follows settles (`event: end`), or
// when the seller's session ends. Sessions are the embedding app's: here a map
// from the `session` cookie to the seller, started and ended by the app.
//
//   node examples/sse-gateway.mjs   (UPLOAD_API, UPLOAD_SERVICE_TOKEN, UPLOAD_CA, PORT)

import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { toJson } from "@bufbuild/protobuf";
import {
  UploadError,
  WatchItemResponseSchema,
  WatchProgressResponseSchema,
  createNodeTransport,
  createUploadClients,
} from "upload-web/node";

export function startGateway({ api, token, ca, port = 0 }) {
  const clients = createUploadClients(createNodeTransport({ baseUrl: api, token, ca }));
  const sessions = new Map(); // session id -> { seller, streams: Set<AbortController> }
  const routes = [
    [/^\/events\/uploads\/([\w-]+)$/, WatchProgressResponseSchema, (id, o) => clients.uploads.watchProgress({ uploadId: id }, o)],
    [/^\/events\/items\/([\w-]+)$/, WatchItemResponseSchema, (id, o) => clients.items.watchItem({ itemId: id }, o)],
  ];
  const server = createServer(async (req, res) => {
    const cookie = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
    const session = sessions.get(cookie);
    const route = routes.map(([path, schema, watch]) => [path.exec(req.url), schema, watch]).find(([m]) => m);
    if (req.method !== "GET" || route === undefined) return res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    // EventSource gives up on an answer other than 200: a stranger is not retried.
    if (session === undefined) return res.writeHead(401).end();
    const [[, id], schema, watch] = route;
    const stream = new AbortController();
    session.streams.add(stream);
    res.on("close", () => stream.abort());
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
    const actingFor = { "x-upload-act-for": session.seller, "x-upload-act-for-role": "seller" };
    try {
      for await (const update of watch(id, { signal: stream.signal, headers: actingFor })) {
        res.write(`data: ${JSON.stringify(toJson(schema, update))}\n\n`);
      }
      res.write("event: end\ndata: {}\n\n");
    } catch (e) {
      const error = UploadError.from(e);
      if (!stream.signal.aborted) res.write(`event: refused\ndata: ${JSON.stringify({ code: error.codeName, reason: error.reason })}\n\n`);
    } finally {
      session.streams.delete(stream);
      res.end();
    }
  });
  return new Promise((resolve) =>
    server.listen(port, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        /** Signs `seller` in under session `id`. */
        startSession: (id, seller) => sessions.set(id, { seller, streams: new Set() }),
        /** Signs the session out and ends every stream it has open. */
        endSession: (id) => {
          for (const stream of sessions.get(id)?.streams ?? []) stream.abort();
          sessions.delete(id);
        },
        close: () => server.close(),
      }),
    ),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const gateway = await startGateway({
    api: process.env.UPLOAD_API,
    token: process.env.UPLOAD_SERVICE_TOKEN,
    ca: process.env.UPLOAD_CA ? readFileSync(process.env.UPLOAD_CA) : undefined,
    port: Number(process.env.PORT || 0),
  });
  console.log(gateway.url);
}
