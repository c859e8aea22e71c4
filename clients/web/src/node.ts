// Node's transport, for gateways and services: gRPC over HTTP/2, with TLS trusting
// a private CA and a client certificate for mTLS where given.

import { createHash } from "node:crypto";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { PartHasher } from "./parts.js";
import { type CallOptions, interceptors } from "./transport.js";

export * from "./index.js";

/** Settings of Node's transport. */
export interface NodeTransportOptions extends CallOptions {
  /** The server (`https://uploads.internal:50051`). */
  baseUrl: string;
  /** PEM of the CA that issued the server's certificate, if not a public one. */
  ca?: string | Buffer;
  /** PEM certificate and key of this service, for mTLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** gRPC over HTTP/2, for Node. */
export function createNodeTransport(options: NodeTransportOptions): Transport {
  const tls = { ca: options.ca, cert: options.cert, key: options.key };
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    nodeOptions: Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)),
    interceptors: interceptors(options),
  });
}

/** Hashes parts with Node's MD5, `size` at once. */
export function nodeHasher(size = 2): PartHasher {
  return {
    size,
    digest: "md5",
    async hash(blob, offset, length) {
      const hash = createHash("md5");
      const reader = blob.slice(offset, offset + length).stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hash.update(value);
      }
      return new Uint8Array(hash.digest());
    },
  };
}
