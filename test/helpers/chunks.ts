// Cuts a byte stream into chunks, for testing incremental parsers against every way TCP may split it.

/** `stream` cut at the given points (taken modulo its length + 1, deduplicated, in order); empty chunks included. */
export function splitAt(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(stream.subarray(from, p));
    from = p;
  }
  chunks.push(stream.subarray(from));
  return chunks;
}
