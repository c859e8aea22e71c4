// The browser's upload: parts hashed in Web Workers, signed in batches, PUT straight
// to the store in parallel, retried with backoff, re-signed when expired, and resumed
// after a reload from the upload id kept in localStorage and the server's record of
// stored parts.

import * as pb from './proto.js';
import { RpcError } from './grpcweb.js';
import { hex } from './md5.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Browsers set these themselves (from the body and the URL) and refuse them from scripts.
const FORBIDDEN = new Set(['content-length', 'host']);

/**
 * The localStorage key of an upload of `file`: its name and size. A file chosen again
 * after a reload is checked against the stored parts before anything is sent.
 */
export const savedKey = (file) => `upload:${file.name}:${file.size}`;

/**
 * Refuses `file` unless every part the store holds for `upload` has its bytes: each
 * stored part is hashed (in the pool's workers) and compared with the store's ETag,
 * its MD5. A store whose ETags are not MD5s (SSE-KMS) is trusted on sizes alone.
 */
async function verifyStored(upload, file, stored, pool, on) {
  const md5s = stored.filter((p) => /^"?[0-9a-f]{32}"?$/i.test(p.etag));
  if (md5s.length) on.log(`checking the chosen file against ${md5s.length} stored parts`);
  const checks = md5s.map(async (p) => {
    const offset = (p.number - 1) * upload.partSizeBytes;
    const digest = await pool.hash(file, offset, Math.min(upload.partSizeBytes, file.size - offset));
    return hex(digest) === p.etag.replace(/"/g, '').toLowerCase() ? null : p.number;
  });
  const differ = (await Promise.all(checks)).filter((n) => n !== null);
  if (differ.length) {
    throw Object.assign(new Error(
      `${file.name} is not the file this upload began with: part ${differ[0]} holds other bytes `
      + `(${differ.length} of ${md5s.length} stored parts differ). Nothing was sent; choose the original file.`,
    ), { otherFile: true });
  }
}

/** An interrupted upload of a file like `file`, if one was kept. */
export function savedUpload(storage, file) {
  const raw = storage.getItem(savedKey(file));
  return raw ? JSON.parse(raw) : null;
}

/** Every saved upload, for the page to offer after a reload. */
export function savedUploads(storage) {
  const out = [];
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (key.startsWith('upload:')) out.push({ key, ...JSON.parse(storage.getItem(key)) });
  }
  return out;
}

function backoff(failures) {
  const step = Math.min(250 * 2 ** (failures - 1), 20000);
  return step / 2 + Math.random() * (step / 2);
}

/** The most parts signed in one SignParts call (batches double up to it, from 1). */
const SIGN_BATCH = 64;
// gRPC codes worth another try: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED.
const RETRYABLE = new Set([14, 4, 8]);

/** `call()`, tried again with backoff while it fails with a retryable gRPC code. */
async function retried(what, attempts, on, call) {
  for (let failures = 0; ;) {
    try {
      return await call();
    } catch (e) {
      failures += 1;
      if (!(e instanceof RpcError) || !RETRYABLE.has(e.code) || failures >= attempts) throw e;
      const delay = backoff(failures);
      on.log(`retrying ${what} in ${(delay / 1000).toFixed(2)} s: ${e.message}`);
      await sleep(delay);
    }
  }
}

/** A URL's refusal that means its time ran out (S3: 403 expired; Garage: 400 too old). */
const expired = (status, text) => (status === 403 || status === 400) && /expired|too old/i.test(text);

/**
 * Sends `parts` of `file` for `upload`: hashed in order by `pool` (Web Workers),
 * signed in batches of 1, 2, 4 … 64 parts, PUT `concurrency` at a time straight from
 * the file (the page never holds a part), each retried with backoff and signed again
 * when its URL expired. Resolves when every part is stored; `signal` stops it.
 */
export async function sendParts(api, upload, file, parts, { concurrency = 4, attempts = 5, pool, on, signal }) {
  const range = (number) => {
    const offset = (number - 1) * upload.partSizeBytes;
    return { offset, length: Math.min(upload.partSizeBytes, file.size - offset) };
  };
  const sign = (batch) => retried('signing', attempts, on, async () => {
    const signed = pb.signedParts(await api.unary('SignParts', pb.signParts(upload.uploadId, batch)));
    if (signed.length !== batch.length) throw new Error(`asked to sign ${batch.length} parts, got ${signed.length}`);
    const byNumber = new Map(signed.map((s) => [s.partNumber, s]));
    const signedAt = Date.now();
    return batch.map((p) => ({ ...p, signed: byNumber.get(p.number), signedAt }));
  });

  // Signed parts wait here for a free slot; the signer stays at most a batch ahead.
  const ready = [];
  const waiters = [];
  let signing = true;
  let failed = null;
  const notify = () => { for (const wake of waiters.splice(0)) wake(); };
  const waitChange = () => new Promise((r) => { waiters.push(r); });
  signal?.addEventListener('abort', notify);

  const signer = (async () => {
    const ahead = pool.size * 2;
    const hashes = [];
    const hashAt = (i) => {
      if (i < parts.length && !hashes[i]) {
        const { offset, length } = range(parts[i]);
        hashes[i] = pool.hash(file, offset, length);
      }
    };
    let batch = 1;
    let pending = [];
    for (let i = 0; i < parts.length; i++) {
      for (let j = i; j < i + ahead; j++) hashAt(j);
      const number = parts[i];
      pending.push({ number, md5: await hashes[i], length: range(number).length });
      hashes[i] = true;
      if (pending.length >= batch || i === parts.length - 1) {
        ready.push(...(await sign(pending)));
        pending = [];
        batch = Math.min(batch * 2, SIGN_BATCH);
        notify();
        while (ready.length > SIGN_BATCH + concurrency && !failed && !signal?.aborted) await waitChange();
      }
      if (failed || signal?.aborted) return;
    }
  })().catch((e) => { failed = failed || e; }).finally(() => { signing = false; notify(); });

  const put = async (part) => {
    const { offset, length } = range(part.number);
    let { signed, signedAt } = part;
    let resigns = 0;
    const signAgain = async (why) => {
      resigns += 1;
      on.log(`part ${part.number}: its URL ${why}; signing it again`);
      [{ signed, signedAt }] = await sign([{ number: part.number, md5: part.md5, length }]);
    };
    for (let failures = 0; ;) {
      // A URL that runs out within 10 s, or within a quarter of its life when that
      // is shorter, is signed again before it is used.
      if (signed.expiresAt && resigns < 3) {
        const left = signed.expiresAt.getTime() - Date.now();
        if (left < Math.min(10000, (signed.expiresAt.getTime() - signedAt) / 4)) await signAgain('expires soon');
      }
      let error;
      try {
        const headers = {};
        for (const [k, v] of signed.headers) if (!FORBIDDEN.has(k.toLowerCase())) headers[k] = v;
        const res = await fetch(signed.url, { method: 'PUT', headers, body: file.slice(offset, offset + length), signal });
        if (res.ok) { on.part(part.number, length); return; }
        const text = await res.text();
        if (expired(res.status, text) && resigns < 3) { await signAgain('expired'); continue; }
        if (res.status < 500) throw Object.assign(new Error(`the store refused part ${part.number} (${res.status})`), { fatal: true });
        error = `the store answered ${res.status}`;
      } catch (e) {
        if (e.fatal || signal?.aborted) throw e;
        // A store refusing an expired URL may answer before it reads the body, or
        // without the CORS headers the page needs to read the answer: the page sees
        // a network error. If the URL has run out by this clock, sign it again.
        if (signed.expiresAt && signed.expiresAt.getTime() <= Date.now() && resigns < 3) {
          await signAgain('expired');
          continue;
        }
        error = error || e.message;
      }
      failures += 1;
      if (failures >= attempts) throw new Error(`part ${part.number} could not be sent: ${error}`);
      const delay = backoff(failures);
      on.log(`retrying part ${part.number} in ${(delay / 1000).toFixed(2)} s: ${error}`);
      await sleep(delay);
    }
  };
  const slot = async () => {
    for (;;) {
      if (failed) return;
      const part = ready.shift();
      if (part) {
        notify();
        try { await put(part); } catch (e) { failed = failed || e; notify(); return; }
      } else if (!signing) {
        return;
      } else {
        await waitChange();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, parts.length)) }, slot));
  await signer;
  if (failed) throw failed;
  if (signal?.aborted) throw new Error('stopped');
}

/**
 * Uploads `file` through `api`, calling `on.part(number, bytes)`, `on.log(text)` and
 * `on.started(upload, missingCount)`; resolves with the completed upload.
 */
export async function uploadFile(api, file, { concurrency = 4, attempts = 5, storage, on, pool, signal }) {
  let upload = null;
  let missing = null;
  const saved = savedUpload(storage, file);
  if (saved) {
    try {
      const got = await api.unary('GetUpload', pb.byUploadId(saved.uploadId));
      upload = pb.withUpload(got);
      if (upload.state === 'uploading' || upload.state === 'created') {
        const listed = pb.uploadedParts(await api.unary('ListUploadedParts', pb.byUploadId(upload.uploadId)));
        await verifyStored(upload, file, listed.parts, pool, on);
        missing = listed.missing;
        on.log(`continuing upload ${upload.uploadId}: ${upload.partCount - missing.length} of ${upload.partCount} parts already stored`);
      } else if (upload.state === 'aborted' || upload.state === 'expired') {
        upload = null;
      } else {
        missing = [];
      }
    } catch (e) {
      if (e.otherFile) throw e;
      on.log(`the saved upload cannot be continued (${e.message}); starting again`);
      upload = null;
    }
  }
  if (!upload) {
    upload = pb.withUpload(await api.unary(
      'CreateUpload', pb.createUpload(file.name, file.size, file.type || 'application/octet-stream'),
    ));
    missing = Array.from({ length: upload.partCount }, (_, i) => i + 1);
    storage.setItem(savedKey(file), JSON.stringify({ uploadId: upload.uploadId, name: file.name, size: file.size }));
    on.log(`created upload ${upload.uploadId}: ${upload.partCount} parts of ${upload.partSizeBytes} bytes`);
  }
  on.started(upload, missing);

  await sendParts(api, upload, file, missing, { concurrency, attempts, pool, on, signal });

  if (upload.state === 'uploading' || upload.state === 'created') {
    upload = pb.withUpload(await api.unary('CompleteUpload', pb.byUploadId(upload.uploadId)));
  }
  storage.removeItem(savedKey(file));
  return upload;
}

/** Follows WatchProgress until the upload settles, calling onUpdate for each message. */
export async function watch(api, uploadId, onUpdate) {
  let last = null;
  await api.stream('WatchProgress', pb.byUploadId(uploadId), (m) => {
    last = pb.progress(m);
    onUpdate(last);
  });
  return last;
}
