// The browser's upload: parts hashed, signed and PUT straight to the store in
// parallel, retried with backoff, re-signed when expired, and resumed after a reload
// from the upload id kept in localStorage and the server's record of stored parts.

import * as pb from './proto.js';
import { md5 } from './md5.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Browsers set these themselves (from the body and the URL) and refuse them from scripts.
const FORBIDDEN = new Set(['content-length', 'host']);

/** The localStorage key of an upload of `file`: same name, size and modification time. */
export const savedKey = (file) => `upload:${file.name}:${file.size}:${file.lastModified}`;

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

/**
 * Uploads `file` through `api`, calling `on.part(number, bytes)`, `on.log(text)` and
 * `on.started(upload, missingCount)`; resolves with the completed upload.
 */
export async function uploadFile(api, file, { concurrency = 4, attempts = 5, storage, on }) {
  let upload = null;
  let missing = null;
  const saved = savedUpload(storage, file);
  if (saved) {
    try {
      const got = await api.unary('GetUpload', pb.byUploadId(saved.uploadId));
      upload = pb.withUpload(got);
      if (upload.state === 'uploading' || upload.state === 'created') {
        missing = pb.uploadedParts(await api.unary('ListUploadedParts', pb.byUploadId(upload.uploadId))).missing;
        on.log(`continuing upload ${upload.uploadId}: ${upload.partCount - missing.length} of ${upload.partCount} parts already stored`);
      } else if (upload.state === 'aborted' || upload.state === 'expired') {
        upload = null;
      } else {
        missing = [];
      }
    } catch (e) {
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

  const queue = [...missing];
  const sendOne = async (number) => {
    const offset = (number - 1) * upload.partSizeBytes;
    const bytes = new Uint8Array(await file.slice(offset, Math.min(offset + upload.partSizeBytes, file.size)).arrayBuffer());
    const digest = md5(bytes);
    const sign = async () => pb.signedParts(await api.unary(
      'SignParts', pb.signParts(upload.uploadId, [{ number, md5: digest, length: bytes.length }]),
    ))[0];
    let signed = await sign();
    for (let failures = 0; ;) {
      let error;
      try {
        const headers = {};
        for (const [k, v] of signed.headers) if (!FORBIDDEN.has(k.toLowerCase())) headers[k] = v;
        const res = await fetch(signed.url, { method: 'PUT', headers, body: bytes });
        if (res.ok) { on.part(number, bytes.length); return; }
        const text = await res.text();
        if (res.status === 403 && /expired/i.test(text)) { signed = await sign(); continue; }
        if (res.status < 500) throw Object.assign(new Error(`the store refused part ${number} (${res.status})`), { fatal: true });
        error = `the store answered ${res.status}`;
      } catch (e) {
        if (e.fatal) throw e;
        error = error || e.message;
      }
      failures += 1;
      if (failures >= attempts) throw new Error(`part ${number} could not be sent: ${error}`);
      const delay = backoff(failures);
      on.log(`retrying part ${number} in ${(delay / 1000).toFixed(2)} s: ${error}`);
      await sleep(delay);
    }
  };
  const slot = async () => {
    while (queue.length) await sendOne(queue.shift());
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, slot));

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
