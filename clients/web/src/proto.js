// Just enough protobuf for the upload API's messages (upload/v1/upload.proto):
// a writer for the requests and a reader that decodes responses into plain objects.

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Builds one message. Numbers are sent as varints (exact up to 2^53). */
export class Writer {
  constructor() { this.bytes = []; }
  varint(n) {
    let v = Number(n);
    while (v >= 0x80) { this.bytes.push((v % 0x80) | 0x80); v = Math.floor(v / 0x80); }
    this.bytes.push(v);
    return this;
  }
  tag(field, wire) { return this.varint(field * 8 + wire); }
  uint(field, n) { return n ? this.tag(field, 0).varint(n) : this; }
  raw(field, data) {
    if (!data.length) return this;
    this.tag(field, 2).varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }
  string(field, s) { return s ? this.raw(field, utf8.encode(s)) : this; }
  message(field, w) { return this.tag(field, 2).varint(w.bytes.length).rawBytes(w.bytes); }
  rawBytes(b) { for (const x of b) this.bytes.push(x); return this; }
  finish() { return Uint8Array.from(this.bytes); }
}

/** Reads the fields of one message: field number → list of raw values. */
export function fields(bytes) {
  const out = new Map();
  let at = 0;
  const varint = () => {
    let v = 0, mul = 1, b;
    do { b = bytes[at++]; v += (b & 0x7f) * mul; mul *= 0x80; } while (b & 0x80);
    return v;
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key % 8;
    let value;
    if (wire === 0) value = varint();
    else if (wire === 2) { const len = varint(); value = bytes.subarray(at, at + len); at += len; }
    else if (wire === 1) { value = bytes.subarray(at, at + 8); at += 8; }
    else if (wire === 5) { value = bytes.subarray(at, at + 4); at += 4; }
    else throw new Error(`unsupported wire type ${wire}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field).push(value);
  }
  return out;
}

const one = (f, n, d) => (f.has(n) ? f.get(n).at(-1) : d);
const str = (f, n) => (f.has(n) ? fromUtf8.decode(f.get(n).at(-1)) : '');
const num = (f, n) => one(f, n, 0);
const msg = (f, n, decode) => (f.has(n) ? decode(f.get(n).at(-1)) : null);
const list = (f, n, decode) => (f.get(n) || []).map(decode);

/** Repeated varints, packed (the proto3 default) or not. */
function packed(f, n) {
  const out = [];
  for (const v of f.get(n) || []) {
    if (typeof v === 'number') { out.push(v); continue; }
    let at = 0;
    while (at < v.length) {
      let x = 0, mul = 1, b;
      do { b = v[at++]; x += (b & 0x7f) * mul; mul *= 0x80; } while (b & 0x80);
      out.push(x);
    }
  }
  return out;
}

export const UploadState = [
  'unspecified', 'created', 'uploading', 'uploaded', 'scanning', 'processing', 'ready',
  'submitted', 'stored', 'quarantined', 'rejected', 'failed', 'aborted', 'expired',
];
export const Stage = ['unspecified', 'upload', 'scan', 'hash', 'metadata', 'preview'];
export const StageStatus = ['unspecified', 'pending', 'running', 'done', 'failed', 'skipped'];

const timestamp = (b) => { const f = fields(b); return new Date(num(f, 1) * 1000 + num(f, 2) / 1e6); };

export function upload(b) {
  const f = fields(b);
  return {
    uploadId: str(f, 1), fileName: str(f, 2), sizeBytes: num(f, 3), contentType: str(f, 4),
    state: UploadState[num(f, 5)] || 'unknown', partSizeBytes: num(f, 6), partCount: num(f, 7),
    metadata: msg(f, 11, (m) => {
      const g = fields(m);
      return { sizeBytes: num(g, 1), md5Hex: str(g, 2), sha256Hex: str(g, 3), type: str(g, 4) };
    }),
    failure: msg(f, 12, (m) => { const g = fields(m); return { code: str(g, 1), message: str(g, 2) }; }),
  };
}

export function stage(b) {
  const f = fields(b);
  return {
    stage: Stage[num(f, 1)] || 'unknown', status: StageStatus[num(f, 2)] || 'unknown',
    bytesDone: num(f, 3), bytesTotal: num(f, 4), detail: str(f, 5),
  };
}

export function signedPart(b) {
  const f = fields(b);
  return {
    partNumber: num(f, 1), method: str(f, 2), url: str(f, 3),
    headers: list(f, 4, (h) => { const g = fields(h); return [str(g, 1), str(g, 2)]; }),
    expiresAt: msg(f, 5, timestamp),
  };
}

// Requests.
export const createUpload = (name, size, type) =>
  new Writer().string(1, name).uint(2, size).string(3, type).finish();
export const byUploadId = (id) => new Writer().string(1, id).finish();
export function signParts(id, parts) {
  const w = new Writer().string(1, id);
  for (const p of parts) {
    w.message(2, new Writer().uint(1, p.number).raw(2, p.md5).uint(3, p.length));
  }
  return w.finish();
}

// Responses.
export const withUpload = (b) => msg(fields(b), 1, upload);
export const signedParts = (b) => list(fields(b), 1, signedPart);
export function uploadedParts(b) {
  const f = fields(b);
  const part = (b) => { const g = fields(b); return { number: num(g, 1), sizeBytes: num(g, 2), etag: str(g, 3) }; };
  return { parts: list(f, 1, part), missing: packed(f, 2), partSizeBytes: num(f, 3), partCount: num(f, 4) };
}
export function progress(b) {
  const f = fields(b);
  return { upload: msg(f, 1, upload), stages: list(f, 2, stage) };
}

// The item service: submitting ready uploads as an item, watching it to stored,
// its versions and their download links.
export const SubmissionState = ['unspecified', 'queued', 'persisted', 'stored', 'failed'];
const ITEM_KIND_DIGITAL_FILE = 1;

export function submitItem(key, title, uploadIds) {
  const w = new Writer().string(2, key).string(3, title).string(4, title).uint(5, ITEM_KIND_DIGITAL_FILE);
  for (const id of uploadIds) w.message(6, new Writer().string(1, id));
  return w.finish();
}
export const byItemId = (id) => new Writer().string(1, id).finish();
export const downloadUrl = (itemId, fileId, version) =>
  new Writer().string(1, itemId).string(2, fileId).uint(3, version).finish();

function fileVersion(b) {
  const f = fields(b);
  return {
    fileId: str(f, 1), version: num(f, 2), md5Hex: str(f, 3), sizeBytes: num(f, 5),
    fileName: str(f, 6), uploadId: str(f, 9), current: num(f, 10) === 1,
  };
}
function item(b) {
  const f = fields(b);
  return {
    itemId: str(f, 1), title: str(f, 3), state: SubmissionState[num(f, 5)] || 'unknown',
    failure: msg(f, 6, (m) => { const g = fields(m); return { code: str(g, 1), message: str(g, 2) }; }),
    files: list(f, 8, (m) => { const g = fields(m); return { fileId: str(g, 1), versionCount: num(g, 3) }; }),
  };
}
export const withItem = (b) => msg(fields(b), 1, item);
export const versions = (b) => list(fields(b), 1, fileVersion);
export const url = (b) => str(fields(b), 1);
