// Sending parts: hashed ahead by a PartHasher (Web Workers in a browser), signed in
// batches of 1, 2, 4 … 64 parts, PUT straight to the store `concurrency` at a time
// from the Blob (no part is held in memory by this code), retried with backoff, and
// signed again when a URL expired or is about to.

import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { UploadServiceClients } from "./client.js";
import { PartChecksum, type SignedPart, type Upload } from "./gen/upload/v1/upload_pb.js";

/** The digest that pins a part: MD5 (`Content-MD5`) or SHA-256 (`x-amz-checksum-sha256`). */
export type PartDigest = "md5" | "sha256";

/** Hashes parts of a Blob. */
export interface PartHasher {
  /** How many parts it hashes at once. */
  readonly size: number;
  /** Which digest it makes (default MD5); an upload's parts are all pinned by it. */
  readonly digest?: PartDigest;
  /** The digest (MD5: 16 bytes, SHA-256: 32) of `length` bytes of `blob` from `offset`. */
  hash(blob: Blob, offset: number, length: number): Promise<Uint8Array>;
}

/** The digest `hasher` makes. */
export const digestOf = (hasher: PartHasher): PartDigest => hasher.digest ?? "md5";

/** The digest that pins `upload`'s parts. */
export const uploadDigest = (upload: Upload): PartDigest =>
  upload.partChecksum === PartChecksum.SHA256 ? "sha256" : "md5";

const DIGEST_NAME: Record<PartDigest, string> = { md5: "MD5", sha256: "SHA-256" };

/** Refuses a hasher whose digest is not the one `upload`'s parts are pinned by. */
export function checkHasher(upload: Upload, hasher: PartHasher): void {
  const wanted = uploadDigest(upload);
  if (digestOf(hasher) !== wanted) {
    throw new PartError(
      0,
      `this upload's parts are pinned by ${DIGEST_NAME[wanted]}, but the hasher makes ${DIGEST_NAME[digestOf(hasher)]}: continue it with a hasher that makes ${DIGEST_NAME[wanted]}`,
    );
  }
}

/** Something that happened while sending, for a progress display or a log. */
export type SendEvent =
  | { kind: "part-sent"; part: number; bytes: number }
  | { kind: "retrying"; part: number; attempt: number; delayMs: number; error: string }
  | { kind: "resigned"; part: number; reason: "expired" | "expires soon" };

/** How parts are sent. */
export interface SendOptions {
  /** Hashes the parts. */
  hasher: PartHasher;
  /** PUTs in flight at once (default 4). */
  concurrency?: number;
  /** Attempts per part on network errors and 5xx answers (default 5). */
  attempts?: number;
  /** Stops everything. */
  signal?: AbortSignal;
  /** Told of every event. */
  onEvent?: (event: SendEvent) => void;
  /** The fetch PUTs go through (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

/** A part the store refused, or could not take after every attempt. */
export class PartError extends Error {
  override readonly name = "PartError";
  constructor(
    readonly part: number,
    message: string,
  ) {
    super(message);
  }
}

/** The most parts signed in one SignParts call. */
export const SIGN_BATCH = 64;
/** A URL that runs out within this many milliseconds (or a quarter of its life) is signed again first. */
const RESIGN_MARGIN_MS = 10_000;
// Browsers set these themselves from the body and the URL, and refuse them from scripts.
const FORBIDDEN = new Set(["content-length", "host"]);

/** Where part `number` lies in the file. */
export function partRange(upload: Upload, number: number): { offset: number; length: number } {
  const size = Number(upload.partSizeBytes);
  const offset = (number - 1) * size;
  return { offset, length: Math.min(size, Number(upload.sizeBytes) - offset) };
}

/** The wait before attempt `failures + 1`: doubling from 250 ms to 20 s, jitter in the upper half. */
export function backoffMs(failures: number, random = Math.random()): number {
  const step = Math.min(250 * 2 ** (failures - 1), 20_000);
  return step / 2 + random * (step / 2);
}

/** Whether a store's refusal says the URL's time ran out (S3: 403 expired; Garage: 400 too old). */
export function isExpiredRefusal(status: number, body: string): boolean {
  return (status === 403 || status === 400) && /expired|too old/i.test(body);
}

/** Whether a URL signed at `signedAtMs` and expiring at `expiresAtMs` should be signed again now. */
export function expiresSoon(signedAtMs: number, expiresAtMs: number, nowMs: number): boolean {
  return expiresAtMs - nowMs < Math.min(RESIGN_MARGIN_MS, (expiresAtMs - signedAtMs) / 4);
}

/** Waits `ms`, or until `signal` aborts (the caller looks at the signal then). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

interface Signed {
  number: number;
  digest: Uint8Array;
  length: number;
  signed: SignedPart;
  signedAt: number;
}

/**
 * Sends `parts` of `blob` for `upload`. Resolves when the store holds every one;
 * rejects with the first part that could not be sent (or the signal's reason).
 */
export async function sendParts(
  clients: UploadServiceClients,
  upload: Upload,
  blob: Blob,
  parts: readonly number[],
  options: SendOptions,
): Promise<void> {
  const { hasher, signal } = options;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const attempts = Math.max(1, options.attempts ?? 5);
  const emit = options.onEvent ?? (() => {});
  const put = options.fetch ?? globalThis.fetch.bind(globalThis);
  if (blob.size !== Number(upload.sizeBytes)) {
    throw new PartError(0, `the upload is for ${upload.sizeBytes} bytes but the file has ${blob.size}`);
  }
  checkHasher(upload, hasher);
  const sha256 = uploadDigest(upload) === "sha256";

  const sign = async (batch: { number: number; digest: Uint8Array; length: number }[]): Promise<Signed[]> => {
    const { parts: signed } = await clients.uploads.signParts(
      {
        uploadId: upload.uploadId,
        parts: batch.map((p) =>
          sha256
            ? { partNumber: p.number, checksumSha256: p.digest, contentLength: BigInt(p.length) }
            : { partNumber: p.number, contentMd5: p.digest, contentLength: BigInt(p.length) },
        ),
      },
      { signal },
    );
    const byNumber = new Map(signed.map((s) => [s.partNumber, s]));
    const signedAt = Date.now();
    return batch.map((p) => {
      const s = byNumber.get(p.number);
      if (s === undefined) {
        throw new PartError(p.number, "the server did not sign it");
      }
      return { ...p, signed: s, signedAt };
    });
  };

  // Signed parts wait here for a free slot; the signer stays at most a batch ahead.
  const ready: Signed[] = [];
  let waiters: (() => void)[] = [];
  let signing = true;
  let failed: unknown = null;
  const notify = () => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };
  const changed = () => new Promise<void>((resolve) => waiters.push(resolve));
  signal?.addEventListener("abort", notify);
  const stopped = () => failed !== null || signal?.aborted === true;

  const signer = (async () => {
    // Parts are hashed up to twice the hasher's width ahead of the one signed next.
    const ahead = hasher.size * 2;
    const hashes = new Map<number, Promise<Uint8Array>>();
    let nextToHash = 0;
    let batch = 1;
    let pending: { number: number; digest: Uint8Array; length: number }[] = [];
    for (let i = 0; i < parts.length; i++) {
      for (; nextToHash < Math.min(i + ahead, parts.length); nextToHash++) {
        const { offset, length } = partRange(upload, parts[nextToHash]);
        hashes.set(nextToHash, hasher.hash(blob, offset, length));
      }
      const number = parts[i];
      const digest = await hashes.get(i)!;
      hashes.delete(i);
      pending.push({ number, digest, length: partRange(upload, number).length });
      if (pending.length >= batch || i === parts.length - 1) {
        ready.push(...(await sign(pending)));
        pending = [];
        batch = Math.min(batch * 2, SIGN_BATCH);
        notify();
        while (ready.length > SIGN_BATCH + concurrency && !stopped()) await changed();
      }
      if (stopped()) return;
    }
  })()
    .catch((e: unknown) => {
      failed ??= e;
    })
    .finally(() => {
      signing = false;
      notify();
    });

  const send = async (part: Signed) => {
    const { offset, length } = partRange(upload, part.number);
    let { signed, signedAt } = part;
    let resigns = 0;
    const signAgain = async (reason: "expired" | "expires soon") => {
      resigns += 1;
      [{ signed, signedAt }] = await sign([{ number: part.number, digest: part.digest, length }]);
      emit({ kind: "resigned", part: part.number, reason });
    };
    const expiresAt = () => (signed.expiresAt ? timestampMs(signed.expiresAt) : undefined);
    for (let failures = 0; ; ) {
      const at = expiresAt();
      if (at !== undefined && resigns < 3 && expiresSoon(signedAt, at, Date.now())) {
        await signAgain("expires soon");
      }
      let error: string;
      try {
        const headers: Record<string, string> = {};
        for (const h of signed.headers) {
          if (!FORBIDDEN.has(h.name.toLowerCase())) headers[h.name] = h.value;
        }
        const res = await put(signed.url, {
          method: signed.method || "PUT",
          headers,
          body: blob.slice(offset, offset + length),
          signal,
        });
        if (res.ok) {
          emit({ kind: "part-sent", part: part.number, bytes: length });
          return;
        }
        const text = await res.text();
        if (isExpiredRefusal(res.status, text) && resigns < 3) {
          await signAgain("expired");
          continue;
        }
        if (res.status < 500) {
          throw new PartError(part.number, `the store refused part ${part.number} (${res.status})`);
        }
        error = `the store answered ${res.status}`;
      } catch (e) {
        if (e instanceof PartError || signal?.aborted) throw e;
        // A store refusing an expired URL may answer before it reads the body, or
        // without the CORS headers a page needs to read the answer: that is seen as
        // a network error. If the URL has run out by this clock, sign it again.
        const at = expiresAt();
        if (at !== undefined && at <= Date.now() && resigns < 3) {
          await signAgain("expired");
          continue;
        }
        error = e instanceof Error ? e.message : String(e);
      }
      failures += 1;
      if (failures >= attempts) {
        throw new PartError(part.number, `part ${part.number} could not be sent: ${error}`);
      }
      const delayMs = backoffMs(failures);
      emit({ kind: "retrying", part: part.number, attempt: failures + 1, delayMs, error });
      await sleep(delayMs, signal);
    }
  };

  const slot = async () => {
    for (;;) {
      if (stopped()) return;
      const part = ready.shift();
      if (part !== undefined) {
        notify();
        try {
          await send(part);
        } catch (e) {
          failed ??= e;
          notify();
          return;
        }
      } else if (!signing) {
        return;
      } else {
        await changed();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, parts.length)) }, slot));
  await signer;
  signal?.removeEventListener("abort", notify);
  if (failed !== null) throw failed;
  signal?.throwIfAborted();
}
