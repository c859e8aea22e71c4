// The service's two gRPC clients over any Connect transport, and the browser's
// transport (gRPC-web over fetch).

import { type Client, type Transport, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ItemService } from "./gen/upload/v1/item_pb.js";
import { UploadService } from "./gen/upload/v1/upload_pb.js";
import { type CallOptions, interceptors } from "./transport.js";

/** The upload and item services of one server. */
export interface UploadServiceClients {
  uploads: Client<typeof UploadService>;
  items: Client<typeof ItemService>;
}

/** Both services' clients over `transport`. */
export function createUploadClients(transport: Transport): UploadServiceClients {
  return {
    uploads: createClient(UploadService, transport),
    items: createClient(ItemService, transport),
  };
}

/** Settings of the browser's transport. */
export interface BrowserTransportOptions extends CallOptions {
  /** The API's origin (`https://uploads.example.com`); a page passes its own origin or its configuration's, never a value from its URL. */
  baseUrl: string;
}

/** gRPC-web over fetch, for browsers: unary calls and server streams. */
export function createBrowserTransport(options: BrowserTransportOptions): Transport {
  return createGrpcWebTransport({
    baseUrl: options.baseUrl,
    interceptors: interceptors(options),
  });
}
