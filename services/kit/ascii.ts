/**
 * Called as `charCodeAt.call(s, n)`: a server's strings come in many
 * internal shapes (sequential, concatenated, sliced, internalized), and
 * with that many, V8 looked `s.charCodeAt` up through a generic inline
 * cache on every character, a sixth of audit's time during ingest.
 */
const charCodeAt = String.prototype.charCodeAt;

/**
 * Copies `s` into `buf` from `at` for as long as its characters are ASCII;
 * answers how many it copied (all of them, or those before the first that
 * is not). Short ASCII strings (ids, names, hex digests) cost less copied
 * this way than a call into Buffer's UTF-8 encoder each.
 */
export function copyAscii(buf: Buffer, at: number, s: string): number {
  const length = s.length;
  let n = 0;
  while (n < length) {
    const c = charCodeAt.call(s, n);
    if (c > 0x7f) break;
    buf[at + n++] = c;
  }
  return n;
}
