/**
 * A fresh ArrayBuffer holding exactly these bytes. `u8.slice().buffer` is not enough: on a Node Buffer (what
 * fs.readFile returns) `slice` is a view into a shared pool, so `.buffer` is the whole pool.
 */
export function exactArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}
