import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  createSentenceFeaturizer,
  type SentenceFeatureSpec,
  type SentenceFeaturizer,
} from './sentence-features.js';
import { InvalidTextBackboneError } from './text-errors.js';
import { buildWordTable, createWordTable, type TableFidelity, type WordTable } from './word-table.js';
import type { SourceWord } from './word-vector-source.js';

/**
 * The text backbone: a pruned, int8 word-vector table and the sentence-feature recipe, described by a manifest
 * (id, sha256 of its one weights file, the recipe, the quantization's fidelity) as the image backbones are.
 */

/**
 * The sentence-feature recipe, chosen on banking77 validation carved from train (bench/text-bench.ts and the
 * README's Text section): SIF-weighted mean word vectors at twice the weight of each n-gram block (it gained a
 * point at 10 examples per intent and cost nothing with all of them); word 1-2-grams; character 3-5-grams (2-5
 * scored the same and costs a fifth more per row); 16,384 buckets (8,192 lost 0.5 points, 32,768 gained none).
 */
export const DEFAULT_TEXT_SPEC: SentenceFeatureSpec = {
  pooling: 'sif',
  denseWeight: 2,
  buckets: 16_384,
  wordNgrams: 2,
  charMin: 3,
  charMax: 5,
  wordWeight: 1,
  charWeight: 1,
};

/** Words kept from the source, most frequent first (see the README for what fewer or more did). */
export const DEFAULT_TEXT_VOCABULARY = 50_000;

export const TEXT_FORMAT = 'headstart-text';

const specSchema = z.object({
  pooling: z.enum(['mean', 'sif', 'none']),
  denseWeight: z.number().nonnegative(),
  buckets: z
    .number()
    .int()
    .refine((b) => b >= 2 && Number.isInteger(Math.log2(b)), 'a power of two'),
  wordNgrams: z.number().int().min(0).max(3),
  charMin: z.number().int().min(1),
  charMax: z.number().int().min(0).max(8),
  wordWeight: z.number().nonnegative(),
  charWeight: z.number().nonnegative(),
});

export const textBackboneManifestSchema = z.object({
  schemaVersion: z.literal(1),
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
  format: z.literal(TEXT_FORMAT),
  description: z.string().default(''),
  spec: specSchema,
  feature: z.object({ dim: z.number().int().positive(), denseDim: z.number().int().nonnegative() }),
  vocabulary: z.object({ words: z.number().int().nonnegative(), dim: z.number().int().positive() }),
  quantization: z.literal('int8-per-row'),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
  weightsBytes: z.number().int().nonnegative(),
  source: z.object({ id: z.string(), note: z.string().optional() }),
  fidelity: z.object({
    words: z.number().int(),
    cosineMean: z.number(),
    cosineMin: z.number(),
    threshold: z.number(),
  }),
  createdAt: z.string().datetime().optional(),
});

export type TextBackboneManifest = z.infer<typeof textBackboneManifestSchema>;

export interface TextBackbonePackage {
  manifest: TextBackboneManifest;
  /** int8 codes (words x dim), then float32 scales (words), then the words, UTF-8, one per line. */
  weights: Uint8Array;
}

export interface TextBackbone {
  readonly manifest: TextBackboneManifest;
  readonly featurizer: SentenceFeaturizer;
  readonly table: WordTable;
}

/** Below this mean cosine to the float vectors a quantized table is not published. */
export const TEXT_FIDELITY_THRESHOLD = 0.999;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function encodeTable(table: WordTable): Uint8Array {
  const words = new TextEncoder().encode(table.words.join('\n'));
  const codesBytes = table.codes.length;
  const scalesOffset = Math.ceil(codesBytes / 4) * 4;
  const out = new Uint8Array(scalesOffset + table.scales.length * 4 + words.length);
  out.set(new Uint8Array(table.codes.buffer, table.codes.byteOffset, codesBytes), 0);
  out.set(
    new Uint8Array(table.scales.buffer, table.scales.byteOffset, table.scales.length * 4),
    scalesOffset,
  );
  out.set(words, scalesOffset + table.scales.length * 4);
  return out;
}

function decodeTable(weights: Uint8Array, vocabulary: { words: number; dim: number }): WordTable {
  const codesBytes = vocabulary.words * vocabulary.dim;
  const scalesOffset = Math.ceil(codesBytes / 4) * 4;
  const wordsOffset = scalesOffset + vocabulary.words * 4;
  if (weights.length < wordsOffset) throw new InvalidTextBackboneError('the weights file is truncated');
  const copy = weights.slice();
  const words =
    vocabulary.words === 0
      ? []
      : new TextDecoder('utf-8', { fatal: true }).decode(copy.subarray(wordsOffset)).split('\n');
  if (words.length !== vocabulary.words) {
    throw new InvalidTextBackboneError(
      `the weights file lists ${words.length} words, the manifest ${vocabulary.words}`,
    );
  }
  return createWordTable({
    words,
    dim: vocabulary.dim,
    codes: new Int8Array(copy.buffer, 0, codesBytes),
    scales: new Float32Array(copy.buffer, scalesOffset, vocabulary.words),
  });
}

/**
 * Builds the text backbone from a word-vector source (the npm package's vectors, pruned to the first `words` by
 * rank, or any source in tests): quantizes the table, measures it against the float vectors and refuses to
 * publish below `TEXT_FIDELITY_THRESHOLD`. The id names the source, the vocabulary, the quantization and the
 * recipe, so a different recipe is a different backbone and its features never mix with this one's.
 */
export async function buildTextBackbone(options: {
  source: AsyncIterable<SourceWord>;
  sourceId: string;
  dim: number;
  spec?: SentenceFeatureSpec;
  createdAt?: string;
}): Promise<{ pkg: TextBackbonePackage; backbone: TextBackbone; fidelity: TableFidelity }> {
  const spec = options.spec ?? DEFAULT_TEXT_SPEC;
  const { table, fidelity } = await buildWordTable(options.source, options.dim);
  if (fidelity.cosineMean < TEXT_FIDELITY_THRESHOLD) {
    throw new InvalidTextBackboneError(
      `the int8 table keeps a mean cosine of ${fidelity.cosineMean.toFixed(5)} to its source, below ${TEXT_FIDELITY_THRESHOLD}`,
    );
  }
  const weights = encodeTable(table);
  const featurizer = createSentenceFeaturizer(spec, table);
  const manifest: TextBackboneManifest = {
    schemaVersion: 1,
    id: textBackboneId(options.sourceId, table.size, spec),
    format: TEXT_FORMAT,
    description: `${options.sourceId} word vectors (${table.size} most frequent words, int8 per row) and hashed n-grams`,
    spec,
    feature: { dim: featurizer.dim, denseDim: featurizer.denseDim },
    vocabulary: { words: table.size, dim: options.dim },
    quantization: 'int8-per-row',
    weightsSha256: sha256Hex(weights),
    weightsBytes: weights.length,
    source: { id: options.sourceId },
    fidelity: { ...fidelity, threshold: TEXT_FIDELITY_THRESHOLD },
    ...(options.createdAt ? { createdAt: options.createdAt } : {}),
  };
  return { pkg: { manifest, weights }, backbone: { manifest, featurizer, table }, fidelity };
}

export function textBackboneId(sourceId: string, words: number, spec: SentenceFeatureSpec): string {
  const vocab = words % 1000 === 0 ? `${words / 1000}k` : String(words);
  const pool = spec.pooling === 'none' ? 'nopool' : `${spec.pooling}${spec.denseWeight}`;
  const grams = `w${spec.wordNgrams}c${spec.charMin}${spec.charMax}h${Math.log2(spec.buckets)}`;
  return `${sourceId}.v${vocab}.i8r.${pool}.${grams}`.toLowerCase().replace(/[^a-z0-9._-]/g, '-');
}

/** Loads a stored text backbone, checking its weights against the manifest's sha256. */
export function loadTextBackbone(pkg: { manifest: unknown; weights: Uint8Array }): TextBackbone {
  const parsed = textBackboneManifestSchema.safeParse(pkg.manifest);
  if (!parsed.success) {
    throw new InvalidTextBackboneError(
      `the manifest is invalid: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
      {
        cause: parsed.error,
      },
    );
  }
  const manifest = parsed.data;
  const actual = sha256Hex(pkg.weights);
  if (actual !== manifest.weightsSha256) {
    throw new InvalidTextBackboneError(
      `the weights of text backbone '${manifest.id}' have sha256 ${actual}, the manifest says ${manifest.weightsSha256}`,
    );
  }
  const table = decodeTable(pkg.weights, manifest.vocabulary);
  return { manifest, table, featurizer: createSentenceFeaturizer(manifest.spec, table) };
}
