/**
 * 32-bit FNV-1a over UTF-16 code units, seeded so that word and character n-grams hash independently. Feature
 * hashing keeps the sentence feature's width fixed whatever the vocabulary of a project, and needs no vocabulary
 * shipped or fitted: an unseen word still lands on the n-grams it shares with known ones.
 */
export function fnv1a(text: string, seed: number, start = 0, end = text.length): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = start; i < end; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche: FNV's low bits mix poorly, and buckets are taken from them.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
