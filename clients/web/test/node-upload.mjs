// The package's upload engine in Node, on its gRPC transport, against a running
// server and store, through the flow the browser page runs too
// (test/engine-flow.ts, built to dist/test): stopped after WEB_STOP_AFTER parts,
// refused for another file, continued with only the missing parts, to ready,
// submitted, to stored. Prints one JSON line of what happened, for the Rust test
// that runs it (tests/tests/stack/web_client.rs).
//
// Environment: WEB_API (https://127.0.0.1:port), WEB_TOKEN, WEB_CA (the CA's PEM
// file), WEB_SIZE (bytes), WEB_STOP_AFTER (parts).

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createNodeTransport, createUploadClients, nodeHasher } from "../dist/src/node.js";
import { stopRefuseResume } from "../dist/test/engine-flow.js";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const result = await stopRefuseResume({
  clients: createUploadClients(
    createNodeTransport({ baseUrl: env("WEB_API"), token: env("WEB_TOKEN"), ca: readFileSync(env("WEB_CA")) }),
  ),
  hasher: nodeHasher(),
  randomBytes: (size) => new Uint8Array(randomBytes(size)),
  md5Hex: (bytes) => createHash("md5").update(bytes).digest("hex"),
  size: Number(env("WEB_SIZE")),
  stopAfter: Number(env("WEB_STOP_AFTER")),
});
console.log(JSON.stringify(result));
