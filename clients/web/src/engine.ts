// The upload as one use case, for every caller (the page, the Uppy plugin, a
// Node gateway): create the upload or continue one begun earlier (only the parts
// the store lacks are sent, after the stored ones are checked against the file),
// send the parts, complete; then watch it, and submit it as an item.

import type { UploadServiceClients } from "./client.js";
import {
  type FileToSubmitSchema,
  type Item,
  type ItemKind,
  SubmissionState,
  type SubmitItemResponse,
} from "./gen/upload/v1/item_pb.js";
import {
  PartChecksum,
  type Upload,
  type UploadedPart,
  UploadState,
  type WatchProgressResponse,
} from "./gen/upload/v1/upload_pb.js";
import { hex } from "./md5.js";
import {
  type SendEvent,
  type SendOptions,
  checkHasher,
  digestOf,
  partRange,
  sendParts,
  uploadDigest,
} from "./parts.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

/** What happened, beside the parts' events. */
export type UploadEvent =
  | SendEvent
  | { kind: "started"; upload: Upload; missing: readonly number[]; resumed: boolean }
  | { kind: "completed"; upload: Upload };

/** What to upload and how. */
export interface UploadOptions extends Omit<SendOptions, "onEvent"> {
  /** The seller's name for the file (default: the File's name). */
  fileName?: string;
  /** The declared type (default: the Blob's type, or application/octet-stream). */
  contentType?: string;
  /** Makes CreateUpload safe to retry after a lost answer. */
  idempotencyKey?: string;
  /** An upload of this same file begun earlier: only its missing parts are sent. */
  resumeUploadId?: string;
  /** Told of every event. */
  onEvent?: (event: UploadEvent) => void;
}

/** The file chosen to continue an upload is not the one it began with. */
export class OtherFileError extends Error {
  override readonly name = "OtherFileError";
  constructor(
    readonly part: number,
    message: string,
  ) {
    super(message);
  }
}

/** States in which an upload still takes parts. */
const TAKES_PARTS = new Set([UploadState.CREATED, UploadState.UPLOADING]);
/** States after which nothing more happens on its own. */
export const SETTLED = new Set([
  UploadState.READY,
  UploadState.STORED,
  UploadState.QUARANTINED,
  UploadState.REJECTED,
  UploadState.FAILED,
  UploadState.ABORTED,
  UploadState.EXPIRED,
]);

/**
 * The parts upload `upload` still needs, after checking that every part the store
 * holds has `blob`'s bytes: by the SHA-256 the store verified, for an upload pinned
 * by SHA-256; else by the ETag, a part's MD5 (a store whose ETags are not MD5s is
 * trusted on sizes alone). Throws OtherFileError before anything is sent if the
 * file differs.
 */
export async function missingParts(
  clients: UploadServiceClients,
  upload: Upload,
  blob: Blob,
  options: Pick<SendOptions, "hasher" | "signal">,
): Promise<number[]> {
  checkHasher(upload, options.hasher);
  const sha256 = uploadDigest(upload) === "sha256";
  const listed = await clients.uploads.listUploadedParts({ uploadId: upload.uploadId }, { signal: options.signal });
  // What each stored part's bytes must hash to, where the store says.
  const expected = (p: UploadedPart): string | undefined =>
    sha256
      ? p.checksumSha256.length === 32
        ? hex(p.checksumSha256)
        : undefined
      : /^"?[0-9a-f]{32}"?$/i.test(p.etag)
        ? p.etag.replace(/"/g, "").toLowerCase()
        : undefined;
  const checkable = listed.parts.filter((p) => expected(p) !== undefined);
  const differ: number[] = [];
  await Promise.all(
    checkable.map(async (p) => {
      const { offset, length } = partRange(upload, p.partNumber);
      if (Number(p.sizeBytes) !== length) {
        differ.push(p.partNumber);
        return;
      }
      const digest = hex(await options.hasher.hash(blob, offset, length));
      if (digest !== expected(p)) differ.push(p.partNumber);
    }),
  );
  if (differ.length > 0) {
    differ.sort((a, b) => a - b);
    throw new OtherFileError(
      differ[0],
      `this is not the file the upload began with: part ${differ[0]} holds other bytes ` +
        `(${differ.length} of ${checkable.length} stored parts differ). Nothing was sent; choose the original file.`,
    );
  }
  return listed.missingPartNumbers;
}

/** Uploads `blob` (a File or any Blob) and completes it; resolves with the upload as CompleteUpload left it. */
export async function uploadBlob(
  clients: UploadServiceClients,
  blob: Blob,
  options: UploadOptions,
): Promise<Upload> {
  const emit = options.onEvent ?? (() => {});
  const call = { signal: options.signal };
  let upload: Upload | undefined;
  let missing: readonly number[] = [];
  let resumed = false;
  if (options.resumeUploadId !== undefined) {
    const got = (await clients.uploads.getUpload({ uploadId: options.resumeUploadId }, call)).upload;
    if (got !== undefined && TAKES_PARTS.has(got.state)) {
      upload = got;
      missing = await missingParts(clients, got, blob, options);
      resumed = true;
    } else if (got !== undefined && got.state !== UploadState.ABORTED && got.state !== UploadState.EXPIRED) {
      // Completed already: nothing to send.
      emit({ kind: "started", upload: got, missing: [], resumed: true });
      return got;
    }
  }
  if (upload === undefined) {
    const name = options.fileName ?? (blob instanceof File ? blob.name : "");
    const created = await clients.uploads.createUpload(
      {
        fileName: name,
        sizeBytes: BigInt(blob.size),
        contentType: options.contentType ?? (blob.type || "application/octet-stream"),
        idempotencyKey: options.idempotencyKey ?? "",
        partChecksum: digestOf(options.hasher) === "sha256" ? PartChecksum.SHA256 : PartChecksum.MD5,
      },
      call,
    );
    upload = created.upload!;
    missing = Array.from({ length: upload.partCount }, (_, i) => i + 1);
  }
  emit({ kind: "started", upload, missing, resumed });
  await sendParts(clients, upload, blob, missing, { ...options, onEvent: emit });
  const done = (await clients.uploads.completeUpload({ uploadId: upload.uploadId }, call)).upload!;
  emit({ kind: "completed", upload: done });
  return done;
}

/** Aborts an unfinished upload: its parts are deleted from the store. */
export async function abortUpload(clients: UploadServiceClients, uploadId: string): Promise<Upload | undefined> {
  return (await clients.uploads.abortUpload({ uploadId })).upload;
}

/** The upload and its stages at each change, until it settles (or `signal` stops it). */
export async function* watchUpload(
  clients: UploadServiceClients,
  uploadId: string,
  signal?: AbortSignal,
): AsyncGenerator<WatchProgressResponse> {
  for await (const update of clients.uploads.watchProgress({ uploadId }, { signal })) {
    yield update;
    if (update.upload !== undefined && SETTLED.has(update.upload.state)) return;
  }
}

/** The item at each change, until its latest submission settles (or `signal` stops it). */
export async function* watchItem(
  clients: UploadServiceClients,
  itemId: string,
  signal?: AbortSignal,
): AsyncGenerator<Item> {
  for await (const { item } of clients.items.watchItem({ itemId }, { signal })) {
    if (item === undefined) continue;
    yield item;
    if (item.state === SubmissionState.STORED || item.state === SubmissionState.FAILED) return;
  }
}

/** What an item submission says. */
export interface Submission {
  /** The item to add a version to; empty for a new item. */
  itemId?: string;
  /** Makes the submission safe to retry (required by the server). */
  idempotencyKey: string;
  title: string;
  description: string;
  kind: ItemKind;
  /** The ready uploads, each with the file it becomes a version of (empty: a new file). */
  files: MessageInitShape<typeof FileToSubmitSchema>[];
}

/** Submits ready uploads as an item; the item is saved and its files stored in the background. */
export async function submitItem(clients: UploadServiceClients, submission: Submission): Promise<SubmitItemResponse> {
  return clients.items.submitItem({ ...submission, itemId: submission.itemId ?? "" });
}
