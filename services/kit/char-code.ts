/**
 * `String.prototype.charCodeAt`, to be called as `charCodeAt.call(s, n)` in
 * loops over many strings: a server's strings come in many internal shapes
 * (sequential, concatenated, sliced, internalized), and with that many, V8
 * looked `s.charCodeAt` up through a generic inline cache on every
 * character, a sixth of audit's time during ingest.
 */
export const charCodeAt = String.prototype.charCodeAt;
