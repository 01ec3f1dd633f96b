import { decodeTextUpload, MAX_TEXT_CHARACTERS } from '../dataset/text-upload.js';
import { codeOf, messageOf } from '../headstart-error.js';
import { densify, type TextBackbone } from '../text/index.js';
import { MAX_BATCH_TEXTS } from './api-schemas.js';
import { ModalityMismatchHttpError, UnprocessableTextError } from './http-errors.js';
import type { ModelCache, ModelLease } from './model-cache.js';
import type { PredictGate } from './predict-gate.js';

export interface TextClassified {
  /** Row `i` of `probs` is text `i`. */
  probs: Float32Array;
  /** Per text, the version's outlier score; null for a version trained without a detector. */
  outlierScores: Float32Array | null;
  /** Texts are never mirrored. */
  flip: { mirror: 'none' };
  mirrored: boolean[];
  timings: { decode: number; backbone: number; head: number };
}

/** Classifies texts with a project's current model, inside the gate; the lease is released when done. */
export type TextPredictor = (
  project: string,
  texts: string[],
) => Promise<{ lease: ModelLease; out: TextClassified }>;

/** A `text/plain` body as text, or the 422 naming why it cannot be one (the rules of a text upload). */
export function textOfBody(body: Uint8Array): string {
  try {
    return decodeTextUpload(body);
  } catch (err) {
    throw new UnprocessableTextError(codeOf(err) ?? 'invalid_text', messageOf(err), { cause: err });
  }
}

/** Refuses an empty batch, one over `MAX_BATCH_TEXTS`, and any empty or over-long text, naming which. */
export function checkTexts(texts: readonly string[]): void {
  if (texts.length === 0) throw new UnprocessableTextError('empty_text', 'no texts to classify');
  if (texts.length > MAX_BATCH_TEXTS) {
    throw new UnprocessableTextError(
      'too_many_texts',
      `at most ${MAX_BATCH_TEXTS} texts per request, got ${texts.length}: split them over several requests`,
    );
  }
  for (const [i, t] of texts.entries()) {
    const where = texts.length > 1 ? `text ${i}` : 'the text';
    if (t.trim() === '') throw new UnprocessableTextError('empty_text', `${where} is empty`);
    const characters = [...t].length;
    if (characters > MAX_TEXT_CHARACTERS) {
      throw new UnprocessableTextError(
        'text_too_long',
        `${where} is ${characters} characters; the limit is ${MAX_TEXT_CHARACTERS}`,
      );
    }
  }
}

function textBackboneOf(lease: ModelLease): TextBackbone {
  if (lease.text) return lease.text;
  throw new ModalityMismatchHttpError(
    `project '${lease.project}' is an image project: send an image (image/jpeg, image/png or image/webp, multipart or JSON {"image": "<base64>"}), not text`,
  );
}

/** Each text's sentence feature, densified into one row of the head's input (the head is a dense layer). */
function classifyTexts(lease: ModelLease, texts: readonly string[]): TextClassified {
  const text = textBackboneOf(lease);
  const dim = text.featurizer.dim;
  const t0 = performance.now();
  const rows = new Float32Array(texts.length * dim);
  for (const [i, t] of texts.entries()) densify(text.featurizer.featurize(t), rows, i * dim);
  const t1 = performance.now();
  const probs = lease.head.predict(rows, texts.length);
  // The detector scores the head's probabilities (or, for versions trained before, the same dense rows,
  // narrowed by its stored sketch: see shared/outlier).
  const outlierScores = lease.outlier ? lease.outlier.score(rows, texts.length, probs) : null;
  const timings = { decode: 0, backbone: t1 - t0, head: performance.now() - t1 };
  return { probs, outlierScores, flip: { mirror: 'none' }, mirrored: [], timings };
}

export function createTextPredictor(options: { models: ModelCache; gate: PredictGate }): TextPredictor {
  return async (project, texts) => {
    checkTexts(texts);
    const lease = await options.models.acquire(project);
    try {
      const out = await options.gate.run(async () => classifyTexts(lease, texts));
      return { lease, out };
    } finally {
      lease.release();
    }
  };
}
