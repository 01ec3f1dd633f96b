/**
 * Dynamic batching in front of the backbone: images submitted while a batch is running (or within the same
 * turn of the event loop) go through together, up to maxBatch. Records of one SQS batch are processed
 * concurrently, so their images share forward passes without the record handlers knowing about each other.
 */
export interface FeatureBatcher<T = Float32Array> {
  extract(pixels: Uint8Array): Promise<T>;
}

/** Anything that turns a batch of images into one result per image: a backbone, or the dual extractor. */
export interface BatchExtractor<T> {
  extract(images: readonly Uint8Array[]): Promise<T[]>;
}

interface Pending<T> {
  pixels: Uint8Array;
  resolve: (f: T) => void;
  reject: (e: unknown) => void;
}

class QueueBatcher<T> implements FeatureBatcher<T> {
  private queue: Pending<T>[] = [];
  private running = false;
  private scheduled = false;

  constructor(
    private readonly backbone: BatchExtractor<T>,
    private readonly maxBatch: number,
  ) {}

  extract(pixels: Uint8Array): Promise<T> {
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

export function createFeatureBatcher<T = Float32Array>(
  backbone: BatchExtractor<T>,
  options: { maxBatch?: number } = {},
): FeatureBatcher<T> {
  return new QueueBatcher(backbone, options.maxBatch ?? 16);
}
