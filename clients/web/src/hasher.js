// One Web Worker of the page's hashing pool: reads a part of the file and answers
// its MD5, so the page's main thread never reads or hashes a byte.

import { md5 } from './md5.js';

self.onmessage = async ({ data: { id, file, offset, length } }) => {
  try {
    const bytes = new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
    self.postMessage({ id, digest: md5(bytes) });
  } catch (e) {
    self.postMessage({ id, error: String((e && e.message) || e) });
  }
};
