/**
 * How a text becomes tokens, one copy for extraction, training and prediction. Unicode NFKC folds compatibility
 * forms (full-width letters, ligatures, superscripts) onto their plain letters; lower-casing matches the word
 * table, which is lower-case. A token is a run of letters, marks and digits, optionally joined by apostrophes
 * (`don't`, `o'neill`), or one punctuation or symbol character: `?` and `!` carry intent. Digits become `0`, so
 * `£20`, `£35` and `£100` share n-grams, while the word table still sees the digits (it knows `2`, `10`, `2019`).
 */

const TOKEN = /[\p{L}\p{M}\p{N}]+(?:['\u2019][\p{L}\p{M}\p{N}]+)*|[^\s\p{L}\p{M}\p{N}]/gu;
const DIGIT = /\p{Nd}/gu;

export interface Token {
  /** As written after normalization: what the word table looks up. */
  text: string;
  /** Digits replaced by 0 and curly apostrophes straightened: what the hashed n-grams see. */
  shape: string;
  /** True for runs of letters and digits, false for a punctuation or symbol character. */
  word: boolean;
}

export function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  for (const match of normalizeText(text).matchAll(TOKEN)) {
    const raw = match[0].replace(/\u2019/g, "'");
    const word = raw.length > 1 || /[\p{L}\p{M}\p{N}]/u.test(raw);
    out.push({ text: raw, shape: raw.replace(DIGIT, '0'), word });
  }
  return out;
}
