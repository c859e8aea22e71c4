// The stable codes a refusal's ErrorInfo carries (`reason`), as the server's
// `Refusal` vocabulary lists them. Written by the Rust test
// `the_web_client_knows_every_refusal_code` (UPLOAD_WEB_FIXTURES=write), which
// fails while this file differs from the server's list.

export const REFUSALS = [
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
  "INVALID_ARGUMENT",
  "TYPE_NOT_ACCEPTED",
  "SOFTWARE_NOT_ACCEPTED",
  "NAME_MISMATCH",
  "OVER_SIZE_LIMIT",
  "CREATE_RATE_EXCEEDED",
  "TOO_MANY_OPEN_UPLOADS",
  "TOO_MANY_WATCHES",
  "UPLOAD_NOT_FOUND",
  "ITEM_NOT_FOUND",
  "FILE_NOT_FOUND",
  "VERSION_NOT_FOUND",
  "NOT_DOWNLOADABLE",
  "VERSION_QUARANTINED",
  "UPLOAD_KEY_REUSED",
  "NOT_THE_OWNER",
  "UPLOAD_ENDED",
  "UPLOAD_EXPIRED",
  "NOT_ACCEPTING_PARTS",
  "NOT_ABORTABLE",
  "MOVED_ON",
  "PARTS_MISSING",
  "PARTS_MISMATCHED",
  "PARTS_SIZE_MISMATCH",
  "PART_RESEND_BROKE_OFF",
  "NOT_ASSEMBLED",
  "PARTS_GONE",
  "SUBMISSION_KEY_REUSED",
  "KIND_CHANGED",
  "NO_FILES",
  "TOO_MANY_FILES",
  "UNKNOWN_FILE",
  "DUPLICATE_FILE",
  "UPLOAD_NOT_READY",
  "NOT_A_VIDEO",
  "UNAVAILABLE",
  "INTERNAL",
] as const;

/** A refusal code the service may send. */
export type Refusal = (typeof REFUSALS)[number];

/** Whether `reason` is a code this client knows. */
export function isRefusal(reason: string | undefined): reason is Refusal {
  return (REFUSALS as readonly string[]).includes(reason ?? "");
}
