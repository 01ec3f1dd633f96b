import type { Backbone } from '../backbone/index.js';

/**
 * Dynamic batching in front of the backbone: images submitted while a batch is running (or within the same
 * turn of the event loop) go through together, up to maxBatch. Records of one SQS batch are processed
 * concurrently, so their images share forward passes without the record handlers knowing about each other.
 */
export interface FeatureBatcher {
  extract(pixels: Uint8Array): Promise<Float32Array>;
}

interface Pending {
  pixels: Uint8Array;
  resolve: (f: Float32Array) => void;
  reject: (e: unknown) => void;
}

class QueueBatcher implements FeatureBatcher {
  private queue: Pending[] = [];
  private running = false;
  private scheduled = false;

  constructor(
    private readonly backbone: Backbone,
    private readonly maxBatch: number,
  ) {}

  extract(pixels: Uint8Array): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ pixels, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const feats = await this.backbone.extract(batch.map((b) => b.pixels));
          batch.forEach((b, i) => {
            b.resolve(feats[i]!);
          });
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

export function createFeatureBatcher(
  backbone: Backbone,
  options: { maxBatch?: number } = {},
): FeatureBatcher {
  return new QueueBatcher(backbone, options.maxBatch ?? 16);
}
