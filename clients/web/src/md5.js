// MD5 (RFC 1321) of a byte array, for the Content-MD5 each signed part pins.
// Browsers' Web Crypto has no MD5, so the page carries its own.

const S = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

function blocks(state, view, offset, end) {
  const m = new Int32Array(16);
  for (let at = offset; at < end; at += 64) {
    for (let j = 0; j < 16; j++) m[j] = view.getInt32(at + j * 4, true);
    let [a, b, c, d] = state;
    for (let i = 0; i < 64; i++) {
      let f, g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
      else { f = c ^ (b | ~d); g = (7 * i) & 15; }
      const sum = (a + f + K[i] + m[g]) | 0;
      a = d; d = c; c = b;
      b = (b + ((sum << S[i]) | (sum >>> (32 - S[i])))) | 0;
    }
    state[0] = (state[0] + a) | 0; state[1] = (state[1] + b) | 0;
    state[2] = (state[2] + c) | 0; state[3] = (state[3] + d) | 0;
  }
}

/** The 16-byte MD5 digest of `bytes` (a Uint8Array). */
export function md5(bytes) {
  const state = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476];
  const whole = bytes.length - (bytes.length % 64);
  blocks(state, new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, whole);
  const tail = new Uint8Array(bytes.length % 64 < 56 ? 64 : 128);
  tail.set(bytes.subarray(whole));
  tail[bytes.length - whole] = 0x80;
  const tv = new DataView(tail.buffer);
  const bits = bytes.length * 8;
  tv.setUint32(tail.length - 8, bits >>> 0, true);
  tv.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
  blocks(state, tv, 0, tail.length);
  const out = new Uint8Array(16);
  const ov = new DataView(out.buffer);
  state.forEach((w, i) => ov.setInt32(i * 4, w, true));
  return out;
}

/** Hex of a byte array. */
export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Base64 of a byte array. */
export function base64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}
