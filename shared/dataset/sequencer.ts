/**
 * S3 gives each event a `sequencer`: hex, comparable between events of the same key after right-padding the
 * shorter with zeros. It is how Headstart tells a late duplicate or an out-of-order delivery from news.
 */
export function compareSequencers(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  const pa = a.toUpperCase().padEnd(n, '0');
  const pb = b.toUpperCase().padEnd(n, '0');
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

let last = 0n;
/**
 * Sequencers for stores that do not make their own (the file-system store): microseconds since the epoch, made
 * strictly increasing within the process, as fixed-width hex so they compare like S3's.
 */
export function localSequencer(now = Date.now()): string {
  let t = BigInt(now) * 1000n;
  if (t <= last) t = last + 1n;
  last = t;
  return t.toString(16).toUpperCase().padStart(16, '0');
}
