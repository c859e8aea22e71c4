// The SSE gateway example (examples/sse-gateway.mjs) followed from a browser's
// EventSource, in WEB_BROWSER (chromium or firefox): the gateway calls the
// server with a service token (WEB_SERVICE_TOKEN) acting for the seller its
// session names; the seller's own upload (sent here by the engine with
// WEB_TOKEN) streams every state to ready, then its item to stored; a stranger
// without a session gets nothing; ending the session ends a stream still open.
// Output: one JSON line on stdout with what the browser saw.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { startGateway } from "../examples/sse-gateway.mjs";
import {
  ItemKind,
  createNodeTransport,
  createUploadClients,
  nodeHasher,
  submitItem,
  uploadBlob,
} from "../dist/src/node.js";
import { launch } from "./launch.mjs";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const ca = readFileSync(env("WEB_CA"));
const gateway = await startGateway({ api: env("WEB_API"), token: env("WEB_SERVICE_TOKEN"), ca });
const seller = createUploadClients(createNodeTransport({ baseUrl: env("WEB_API"), token: env("WEB_TOKEN"), ca }));
gateway.startSession("s-1", env("WEB_SELLER"));

const browser = await launch(env("WEB_BROWSER"), process.env.WEB_SERVER_CERT);
try {
  const page = await browser.newPage();
  await page.goto(`${gateway.url}/`);
  // In the page: follow a path until `end` (or the stream closes for good).
  await page.evaluate(() => {
    window.follow = (path) =>
      new Promise((resolve) => {
        const seen = { data: [], opens: 0, ended: false, refused: null };
        const source = new EventSource(path);
        source.onopen = () => seen.opens++;
        source.onmessage = (e) => seen.data.push(JSON.parse(e.data));
        source.addEventListener("end", () => {
          seen.ended = true;
          source.close();
          resolve(seen);
        });
        source.addEventListener("refused", (e) => {
          seen.refused = JSON.parse(e.data);
        });
        source.onerror = () => {
          // Closed for good: an answer other than 200 (no session, or it ended).
          if (source.readyState === EventSource.CLOSED) resolve({ ...seen, closed: true });
        };
        window.lastSource = source;
      });
  });
  // A stranger: no session cookie yet.
  const stranger = await page.evaluate(() => window.follow("/events/uploads/01940000-0000-7000-8000-000000000001"));
  // Signed in: the app's session cookie.
  await page.evaluate(() => {
    document.cookie = "session=s-1; path=/; SameSite=Strict";
  });

  // The seller's upload, followed from its start.
  const bytes = randomBytes(12 << 20);
  let uploadId;
  const started = new Promise((resolve) => {
    uploadBlob(seller, new Blob([bytes]), {
      fileName: "gateway.bin",
      hasher: nodeHasher(),
      onEvent: (e) => {
        if (e.kind === "started") resolve(e.upload.uploadId);
      },
    }).catch((e) => console.error(`the upload failed: ${e}`));
  });
  uploadId = await started;
  const upload = await page.evaluate((id) => window.follow(`/events/uploads/${id}`), uploadId);

  const submitted = await submitItem(seller, {
    idempotencyKey: `gateway-${uploadId}`,
    title: "Gateway",
    description: "followed through the gateway",
    kind: ItemKind.DIGITAL_FILE,
    files: [{ uploadId, fileId: "" }],
  });
  const item = await page.evaluate((id) => window.follow(`/events/items/${id}`), submitted.item.itemId);

  // A stream still open (an upload that takes no parts) ends with the session.
  const idle = (await seller.uploads.createUpload({ fileName: "idle.bin", sizeBytes: 1024n, contentType: "application/octet-stream" })).upload;
  await page.evaluate((id) => {
    window.idle = window.follow(`/events/uploads/${id}`);
  }, idle.uploadId);
  await page.waitForFunction(() => window.lastSource.readyState === EventSource.OPEN);
  gateway.endSession("s-1");
  const ended = await page.evaluate(() => window.idle);

  console.log(
    JSON.stringify({
      stranger: { opens: stranger.opens, closed: stranger.closed === true, data: stranger.data.length },
      uploadStates: [...new Set(upload.data.map((d) => d.upload?.state))],
      uploadEnded: upload.ended,
      lastMd5: upload.data.at(-1)?.upload?.metadata?.md5Hex,
      itemStates: [...new Set(item.data.map((d) => d.item?.state))],
      itemEnded: item.ended,
      afterSessionEnd: { opens: ended.opens, closed: ended.closed === true, ended: ended.ended, data: ended.data.length },
    }),
  );
} finally {
  await browser.close();
  gateway.close();
}
