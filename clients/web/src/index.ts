// The upload service's web client. Where things live: `client` the gRPC clients
// and the browser transport; `transport` what every call carries (token,
// acting-for headers, retries); `retry` when a call is tried again; `errors`
// failures with their ErrorInfo, BadRequest and RetryInfo; `gen/` the code
// generated from `proto/` (never edited by hand); `node` Node's transport.

export { createBrowserTransport, createUploadClients } from "./client.js";
export type { BrowserTransportOptions, UploadServiceClients } from "./client.js";
export { REFUSAL_DOMAIN, UploadError } from "./errors.js";
export type { FieldViolation } from "./errors.js";
export { retryDelay, retryInterceptor } from "./retry.js";
export type { RetryOptions } from "./retry.js";
export type { ActingFor, CallOptions, TokenSource } from "./transport.js";
export * from "./gen/upload/v1/upload_pb.js";
export * from "./gen/upload/v1/item_pb.js";
