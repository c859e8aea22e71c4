// The upload service's web client. Where things live: `engine` the upload as one
// use case (create or resume, send, complete, watch, submit); `parts` sending
// parts (hash, sign in batches, PUT, retry, re-sign); `worker-hasher` (MD5 in Web
// Workers) and `sha256-hasher` (SHA-256 from Web Crypto), the two ways a part is
// pinned; `client` the gRPC clients
// and the browser transport; `transport` what every call carries (token,
// acting-for headers, retries); `retry` when a call is tried again; `errors`
// failures with their ErrorInfo, BadRequest and RetryInfo; `gen/` the code
// generated from `proto/` (never edited by hand); `node` Node's transport.

export { createBrowserTransport, createUploadClients } from "./client.js";
export type { BrowserTransportOptions, UploadServiceClients } from "./client.js";
export { REFUSAL_DOMAIN, UploadError } from "./errors.js";
export type { FieldViolation } from "./errors.js";
export {
  OtherFileError,
  SETTLED,
  abortUpload,
  missingParts,
  submitItem,
  uploadBlob,
  watchItem,
  watchUpload,
} from "./engine.js";
export type { Submission, UploadEvent, UploadOptions } from "./engine.js";
export { WorkerHasher } from "./worker-hasher.js";
export { Sha256Hasher, webCryptoAvailable } from "./sha256-hasher.js";
export { PartError, SIGN_BATCH, digestOf, partRange, sendParts } from "./parts.js";
export type { PartDigest, PartHasher, SendEvent, SendOptions } from "./parts.js";
export { REFUSALS, isRefusal } from "./refusals.js";
export type { Refusal } from "./refusals.js";
export { retryDelay, retryInterceptor } from "./retry.js";
export type { RetryOptions } from "./retry.js";
export type { ActingFor, CallOptions, TokenSource } from "./transport.js";
export * from "./gen/upload/v1/upload_pb.js";
export * from "./gen/upload/v1/item_pb.js";
