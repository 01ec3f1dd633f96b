import { ModalityMismatchError, TextUploadError } from './dataset-errors.js';

/** What a project holds: photos or texts, never both (one backbone's features per project). */
export type Modality = 'image' | 'text';

/** Longest text accepted as one example, in characters (code points). */
export const MAX_TEXT_CHARACTERS = 10_000;

/** A `.txt` upload is a text example; everything else is a photo. */
export function modalityOfKey(key: string): Modality {
  return /\.txt$/i.test(key) ? 'text' : 'image';
}

const NOUN: Record<Modality, string> = { image: 'photo', text: 'text' };

export function modalityMismatch(project: string, projectModality: Modality, upload: Modality) {
  return new ModalityMismatchError(
    `project '${project}' is a ${projectModality} project, so this ${NOUN[upload]} upload is refused: a project holds photos or texts, not both (use another project for ${NOUN[upload]}s)`,
  );
}

// Control characters other than tab, line feed, vertical tab, form feed and carriage return: their presence
// in more than a trace says the file is not prose.
// biome-ignore lint/suspicious/noControlCharactersInRegex: counting control characters is the point.
const BINARY_CONTROL = /[\u0000-\u0008\u000e-\u001f\u007f]/g;

/**
 * The text of an upload, or the TextUploadError it is quarantined with: invalid UTF-8, binary content (a NUL
 * byte, or more than 1% control characters), empty after trimming, or over `MAX_TEXT_CHARACTERS`. A leading
 * byte-order mark is dropped; the text is otherwise kept as written (the tokenizer normalizes it).
 */
export function decodeTextUpload(body: Uint8Array, maxCharacters = MAX_TEXT_CHARACTERS): string {
  if (body.includes(0)) {
    throw new TextUploadError('binary_text', 'the file holds NUL bytes: it is binary, not text');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(body);
  } catch (cause) {
    throw new TextUploadError('invalid_utf8', 'the file is not valid UTF-8: save it as UTF-8 text', {
      cause,
    });
  }
  const controls = text.match(BINARY_CONTROL)?.length ?? 0;
  if (controls > Math.max(1, text.length / 100)) {
    throw new TextUploadError(
      'binary_text',
      `the file holds ${controls} control characters: it looks binary, not text`,
    );
  }
  if (text.trim() === '') throw new TextUploadError('empty_text', 'the text is empty');
  let characters = 0;
  for (const _ of text) characters++;
  if (characters > maxCharacters) {
    throw new TextUploadError(
      'text_too_long',
      `the text is ${characters} characters; the limit is ${maxCharacters} (split it into several examples)`,
    );
  }
  return text;
}
