// The package's upload engine in Node, on its gRPC transport, against a running
// server and store: a file is sent until WEB_STOP_AFTER parts are stored, stopped
// (its AbortSignal), refused for another file of the same size, continued from
// ListUploadedParts with only the missing parts, completed, watched to ready, submitted as an item and watched to stored.
// Prints one JSON line of what happened, for the Rust test that runs it
// (tests/tests/stack/web_client.rs).
//
// Environment: WEB_API (https://127.0.0.1:port), WEB_TOKEN, WEB_CA (the CA's PEM
// file), WEB_SIZE (bytes), WEB_STOP_AFTER (parts).

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  ItemKind,
  UploadError,
  UploadState,
  createNodeTransport,
  createUploadClients,
  nodeHasher,
  submitItem,
  uploadBlob,
  watchItem,
  watchUpload,
} from "../dist/src/node.js";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const clients = createUploadClients(
  createNodeTransport({ baseUrl: env("WEB_API"), token: env("WEB_TOKEN"), ca: readFileSync(env("WEB_CA")) }),
);
const bytes = randomBytes(Number(env("WEB_SIZE")));
const blob = new Blob([bytes], { type: "application/octet-stream" });
const md5 = createHash("md5").update(bytes).digest("hex");
const stopAfter = Number(env("WEB_STOP_AFTER"));

const puts = { first: 0, other: 0, second: 0 };
let round = "first";
const counting = (input, init) => {
  puts[round] += 1;
  return fetch(input, init);
};

// First round: stopped once `stopAfter` parts are stored.
const controller = new AbortController();
let uploadId = "";
let sentFirst = 0;
try {
  await uploadBlob(clients, blob, {
    fileName: "engine.bin",
    hasher: nodeHasher(),
    concurrency: 2,
    fetch: counting,
    signal: controller.signal,
    onEvent: (e) => {
      if (e.kind === "started") uploadId = e.upload.uploadId;
      if (e.kind === "part-sent" && ++sentFirst >= stopAfter) controller.abort(new Error("stopped on purpose"));
    },
  });
  throw new Error("the first round was not stopped");
} catch (e) {
  if (!controller.signal.aborted) throw e;
}

// Another file of the same size is refused before any PUT.
round = "other";
let otherFile = "";
try {
  await uploadBlob(clients, new Blob([randomBytes(bytes.length)]), {
    resumeUploadId: uploadId,
    hasher: nodeHasher(),
    fetch: counting,
  });
} catch (e) {
  otherFile = e.name;
}

// Second round: the same file, continued.
round = "second";
let missingAtResume = -1;
let resumed = false;
const uploaded = await uploadBlob(clients, blob, {
  resumeUploadId: uploadId,
  hasher: nodeHasher(),
  concurrency: 2,
  fetch: counting,
  onEvent: (e) => {
    if (e.kind === "started") {
      missingAtResume = e.missing.length;
      resumed = e.resumed;
    }
  },
});

const states = [];
let last;
for await (const update of watchUpload(clients, uploadId)) {
  last = update.upload;
  if (states.at(-1) !== UploadState[last.state]) states.push(UploadState[last.state]);
}

const submitted = await submitItem(clients, {
  idempotencyKey: `engine-${uploadId}`,
  title: "Engine",
  description: "sent by the package's engine",
  kind: ItemKind.DIGITAL_FILE,
  files: [{ uploadId, fileId: "" }],
});
let item;
for await (const seen of watchItem(clients, submitted.item.itemId)) item = seen;

let refusal = {};
try {
  await clients.uploads.getUpload({ uploadId: "not-an-id" });
} catch (e) {
  const error = UploadError.from(e);
  refusal = { code: error.codeName, reason: error.reason, fields: error.fieldViolations.map((v) => v.field) };
}

console.log(
  JSON.stringify({
    partCount: uploaded.partCount,
    sentFirst,
    putsFirst: puts.first,
    putsSecond: puts.second,
    putsOther: puts.other,
    missingAtResume,
    resumed,
    completedState: UploadState[uploaded.state],
    states,
    finalState: UploadState[last.state],
    md5,
    serverMd5: last.metadata?.md5Hex,
    otherFile,
    itemState: item.state,
    itemVersionMd5: item.files[0]?.current?.md5Hex,
    refusal,
  }),
);
