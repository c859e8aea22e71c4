// The page's MD5 (src/md5.js) against Node's at the sizes where padding changes
// (55, 56, 63, 64, 119, 120 … bytes) and on unaligned views; prints one JSON line
// with the mismatches (none expected).

import { createHash } from 'node:crypto';
import { hex, md5 } from '../src/md5.js';

const mismatches = [];
const sizes = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096 + 5, 1 << 20];
for (const n of sizes) {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 131 + 17) & 255;
  const want = createHash('md5').update(bytes).digest('hex');
  if (hex(md5(bytes)) !== want) mismatches.push({ size: n, aligned: true });
  const shifted = new Uint8Array(n + 1);
  shifted.set(bytes, 1);
  if (hex(md5(shifted.subarray(1))) !== want) mismatches.push({ size: n, aligned: false });
}
console.log(JSON.stringify({ sizes: sizes.length, mismatches }));
