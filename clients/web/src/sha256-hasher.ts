// A PartHasher on Web Crypto's SHA-256, for browsers and Node: the digest is the
// platform's own (native, and off the page's main thread in browsers), where MD5
// has to run in JavaScript. Parts hashed this way are pinned with
// `x-amz-checksum-sha256`, which the store verifies like Content-MD5. Each part is
// read into memory once for its digest, at most `size` parts at a time.

import type { PartHasher } from "./parts.js";

/** Whether this platform has Web Crypto's digest (browsers only on secure origins: https, localhost). */
export const webCryptoAvailable = (): boolean => typeof globalThis.crypto?.subtle?.digest === "function";

/** Hashes parts with SHA-256 from Web Crypto, `size` at once. */
export class Sha256Hasher implements PartHasher {
  readonly digest = "sha256" as const;
  private running = 0;
  private waiting: (() => void)[] = [];

  constructor(readonly size = 2) {
    if (!webCryptoAvailable()) {
      throw new Error("Web Crypto is not available here (a browser has it on https and localhost pages only)");
    }
  }

  async hash(blob: Blob, offset: number, length: number): Promise<Uint8Array> {
    if (this.running >= this.size) await new Promise<void>((resume) => this.waiting.push(resume));
    this.running += 1;
    try {
      const bytes = await blob.slice(offset, offset + length).arrayBuffer();
      return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }
}
