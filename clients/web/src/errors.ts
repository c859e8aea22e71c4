// Failures as the service states them: the gRPC code, the stable reason of its
// google.rpc.ErrorInfo (what a client branches on), the fields its BadRequest
// names and the wait its RetryInfo asks for.

import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { type Refusal, isRefusal } from "./refusals.js";

/** The domain the service's ErrorInfo details carry. */
export const REFUSAL_DOMAIN = "upload.marketplace";

/** A field of the request the service named as wrong, and why. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** What the service said of why, beside the code and the message. */
export interface RefusalDetails {
  /** ErrorInfo's reason (`OVER_SIZE_LIMIT`, `UPLOAD_NOT_FOUND`, …). */
  reason?: string;
  /** The fields BadRequest named. */
  fieldViolations?: readonly FieldViolation[];
  /** How long RetryInfo asks to wait before trying again, in milliseconds. */
  retryDelayMs?: number;
}

/**
 * A call the service refused or could not answer. It is a ConnectError (Connect's
 * clients pass it through as it is), with the service's details read.
 */
export class UploadError extends ConnectError {
  /**
   * ErrorInfo's reason, when the service gave one in its domain and it is a code
   * this client knows; a code it does not know reads as undefined (see rawReason).
   */
  readonly reason: Refusal | undefined;
  /** ErrorInfo's reason as the service sent it, known or not. */
  readonly rawReason: string | undefined;
  /** The fields BadRequest named. */
  readonly fieldViolations: readonly FieldViolation[];
  /** How long RetryInfo asks to wait, in milliseconds. */
  readonly retryDelayMs: number | undefined;

  constructor(message: string, code: Code, details: RefusalDetails = {}, cause?: unknown, metadata?: HeadersInit) {
    super(message, code, metadata, undefined, cause);
    this.rawReason = details.reason;
    this.reason = isRefusal(details.reason) ? details.reason : undefined;
    this.fieldViolations = details.fieldViolations ?? [];
    this.retryDelayMs = details.retryDelayMs;
  }

  /** The code's name, as gRPC spells it (`RESOURCE_EXHAUSTED`). */
  get codeName(): string {
    return Code[this.code]
      .replace(/([a-z])([A-Z])/g, "$1_$2")
      .toUpperCase();
  }

  /** Reads any thrown value as an UploadError (a network failure is UNAVAILABLE or UNKNOWN). */
  static override from(error: unknown, code: Code = Code.Unknown): UploadError {
    if (error instanceof UploadError) {
      return error;
    }
    const connect = ConnectError.from(error, code);
    const info = connect.findDetails(ErrorInfoSchema).find((i) => i.domain === REFUSAL_DOMAIN);
    const fieldViolations = connect
      .findDetails(BadRequestSchema)
      .flatMap((bad) => bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
    const retry = connect.findDetails(RetryInfoSchema)[0]?.retryDelay;
    const retryDelayMs =
      retry === undefined ? undefined : Number(retry.seconds) * 1000 + Math.floor(retry.nanos / 1_000_000);
    const upload = new UploadError(
      connect.rawMessage,
      connect.code,
      { reason: info?.reason, fieldViolations, retryDelayMs },
      connect.cause ?? error,
      connect.metadata,
    );
    upload.details = connect.details;
    return upload;
  }

  // ConnectError counts any error of its shape as its own; an UploadError is one
  // of this class (or a subclass) only.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && Object.prototype.isPrototypeOf.call(this.prototype, value);
  }
}
