// CRC-32 (IEEE 802.3 / zlib polynomial 0xEDB88320), slice-by-8. Node 20 has no
// zlib.crc32 (added in 22.2), and this is on the log's hot path.

const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  t.push(t0);
  for (let k = 1; k < 8; k++) {
    const prev = t[k - 1]!;
    const tk = new Uint32Array(256);
    for (let n = 0; n < 256; n++) tk[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!;
    t.push(tk);
  }
  return t;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** CRC-32 of b[start, end), continuing from `crc` (pass a previous result to chain). */
export function crc32(b: Uint8Array, start = 0, end = b.length, crc = 0): number {
  let c = ~crc >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = (c ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))) >>> 0;
    c =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[b[i + 4]!]! ^
      T2[b[i + 5]!]! ^
      T1[b[i + 6]!]! ^
      T0[b[i + 7]!]!;
  }
  for (; i < end; i++) c = T0[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
