import { z } from 'zod';

/** Names usable as path segments in the store: `backbones/<id>/`, `features/<id>/`. */
export const backboneIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,63}$/,
    'backbone ids are 1-64 of a-z 0-9 . _ - starting with a letter or digit',
  );

export const preprocessingSchema = z.object({
  /** 'center-crop': scale the shorter side to inputSize, then crop the centre square. 'squash': ignore aspect. */
  resize: z.enum(['center-crop', 'squash']),
  /** Pixel values (0-255) are mapped to `pixel * scale + offset` before the first layer. */
  scale: z.number(),
  offset: z.number(),
});

export const quantizationSchema = z.enum(['float32', 'float16', 'uint8-per-tensor', 'int8-per-channel']);
export type Quantization = z.infer<typeof quantizationSchema>;

/** How a quantization mode reads in a backbone id. */
export const QUANT_SLUG: Record<Quantization, string> = {
  float32: 'f32',
  float16: 'f16',
  'uint8-per-tensor': 'u8t',
  'int8-per-channel': 'i8c',
};

export const fidelitySchema = z.object({
  images: z.number().int().positive(),
  cosineMean: z.number(),
  cosineMin: z.number(),
  /** Share of images on which a head trained on the source's features predicts the same top-1 on the export's. */
  headTop1Agreement: z.number().optional(),
  threshold: z.number(),
});

export const backboneManifestSchema = z.object({
  schemaVersion: z.literal(1),
  id: backboneIdSchema,
  description: z.string().default(''),
  /**
   * 'headstart-graph': Headstart's own folded, quantized graph (what the functions and the edge run).
   * 'tfjs-layers': a Keras layers model cut at `feature.layer`. 'tfjs-graph': a graph model executed to `feature.node`.
   */
  format: z.enum(['headstart-graph', 'tfjs-layers', 'tfjs-graph']),
  inputSize: z.number().int().min(32).max(1024),
  preprocessing: preprocessingSchema,
  feature: z.object({
    /** Layer (layers models, headstart graphs) or node (graph models) whose output is the feature. */
    layer: z.string().min(1),
    /**
     * How a spatial output becomes one vector per image: 'avg' global average; 'grid2' a 2x2 grid of averages
     * (4 * channels, cells row-major; see grid-pool.ts for odd sizes); 'none' the map flattened.
     */
    pooling: z.enum(['avg', 'grid2', 'none']),
    dim: z.number().int().positive(),
  }),
  quantization: quantizationSchema,
  /** sha256 (hex) of the weights file exactly as stored. */
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
  weightsBytes: z.number().int().nonnegative(),
  source: z
    .object({
      id: z.string(),
      weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
      note: z.string().optional(),
    })
    .optional(),
  fidelity: fidelitySchema.optional(),
  createdAt: z.string().datetime().optional(),
});

export type BackboneManifest = z.infer<typeof backboneManifestSchema>;
