// Node's transport, for gateways and services: gRPC over HTTP/2, with TLS trusting
// a private CA and a client certificate for mTLS where given.

import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
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
