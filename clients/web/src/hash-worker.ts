// One Web Worker of a WorkerHasher: reads a part of the Blob it is given and
// answers its MD5.

import { md5 } from "./md5.js";

interface Ask {
  id: number;
  blob: Blob;
  offset: number;
  length: number;
}

self.onmessage = async ({ data: { id, blob, offset, length } }: MessageEvent<Ask>) => {
  try {
    const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    self.postMessage({ id, digest: md5(bytes) });
  } catch (e) {
    self.postMessage({ id, error: String(e instanceof Error ? e.message : e) });
  }
};
