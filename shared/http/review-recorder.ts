import { createHash } from 'node:crypto';
import { layout } from '../layout/index.js';
import type { ReviewSettings } from '../pipeline/project-settings.js';
import { REVIEW_FORMATS, type ReviewFormat, type ReviewItem, type ReviewReason } from '../review/index.js';
import { type ObjectStore, PreconditionFailedError } from '../store/index.js';
import { describeError, type EdgeLogger } from './edge-logger.js';

/** One answered photo or text, offered to the review queue. */
export interface ReviewCandidate {
  project: string;
  version: string;
  settings: ReviewSettings;
  /** The photo's bytes, or the text in UTF-8 (format `txt`). */
  body: Uint8Array;
  format: ReviewFormat;
  /** A text's text, kept in the item's record too. */
  text?: string;
  /** The top label and its score over all labels, whatever the request asked to see. */
  top: { label: string; score: number };
  unknown: boolean | null;
  outlierScore: number | null;
}

export interface ReviewRecorder {
  /** Decides whether to keep the photo and, if so, starts writing it; returns at once and never throws. */
  offer(candidate: ReviewCandidate): void;
  /** Resolves when the writes started so far are done, or after `timeoutMs`; never rejects. */
  settle(timeoutMs?: number): Promise<void>;
  stats(): ReviewRecorderStats;
}

export interface ReviewRecorderStats {
  written: number;
  /** Already kept (the same bytes), found by this instance or by the store's create-if-absent. */
  duplicates: number;
  /** Not kept because of the rate cap, the size cap or too many writes in flight. */
  dropped: number;
  failed: number;
}

export interface ReviewRecorderOptions {
  store: ObjectStore;
  logger: EdgeLogger;
  /** Milliseconds; drives the rate cap. */
  clock: () => number;
  /** In [0, 1); drives the random sample. */
  random: () => number;
  /** Items written per minute by this instance at most (a token bucket of that size). */
  maxPerMinute: number;
  /** Photos larger than this are not kept. */
  maxBytes: number;
  /** Writes in flight at once at most; beyond it photos are not kept. */
  maxInFlight?: number;
}

/** Why a photo or text is kept, or undefined when it is not: unknown first, then a low top score, then the sample. */
export function reviewReason(
  settings: ReviewSettings,
  answer: { unknown: boolean | null; score: number },
  random: () => number,
): ReviewReason | undefined {
  if (!settings.enabled) return undefined;
  if (answer.unknown === true) return 'unknown';
  if (answer.score < settings.below) return 'low_score';
  if (settings.sample > 0 && random() < settings.sample) return 'sample';
  return undefined;
}

/** Ids this instance already wrote or found kept, so repeats cost no store call; forgets the oldest first. */
const SEEN_LIMIT = 1000;

class StoreReviewRecorder implements ReviewRecorder {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly seen = new Set<string>();
  private tokens: number;
  private refilledAt: number;
  private readonly counts: ReviewRecorderStats = { written: 0, duplicates: 0, dropped: 0, failed: 0 };
  private lastDropLog = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: ReviewRecorderOptions) {
    this.tokens = o.maxPerMinute;
    this.refilledAt = o.clock();
  }

  offer(c: ReviewCandidate): void {
    try {
      const reason = reviewReason(c.settings, { unknown: c.unknown, score: c.top.score }, this.o.random);
      if (!reason) return;
      if (c.body.length > this.o.maxBytes || this.inFlight.size >= (this.o.maxInFlight ?? 4)) {
        this.drop(c.project, c.body.length > this.o.maxBytes ? 'size' : 'in_flight');
        return;
      }
      if (!this.takeToken()) {
        this.drop(c.project, 'rate');
        return;
      }
      const createdAt = new Date(this.o.clock()).toISOString();
      // A macrotask later, so hashing and the store calls start after the handler has returned its response.
      const write = new Promise<void>((resolve) => setTimeout(resolve, 0))
        .then(() => this.write(c, reason, createdAt))
        .catch((err: unknown) => {
          this.counts.failed++;
          this.o.logger.warn('review item not kept', { project: c.project, ...describeError(err) });
        })
        .finally(() => this.inFlight.delete(write));
      this.inFlight.add(write);
    } catch (err) {
      this.counts.failed++;
      this.o.logger.warn('review item not kept', { project: c.project, ...describeError(err) });
    }
  }

  async settle(timeoutMs = 2000): Promise<void> {
    if (this.inFlight.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.inFlight]), timeout]);
    clearTimeout(timer);
  }

  stats(): ReviewRecorderStats {
    return { ...this.counts };
  }

  private takeToken(): boolean {
    const now = this.o.clock();
    const perMs = this.o.maxPerMinute / 60_000;
    this.tokens = Math.min(this.o.maxPerMinute, this.tokens + (now - this.refilledAt) * perMs);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private drop(project: string, why: 'size' | 'rate' | 'in_flight'): void {
    this.counts.dropped++;
    // At most one line a minute: a saturated instance would otherwise log on every prediction.
    const now = this.o.clock();
    if (now - this.lastDropLog < 60_000) return;
    this.lastDropLog = now;
    this.o.logger.info('review item not kept: over a cap', {
      project,
      cap: why,
      dropped: this.counts.dropped,
    });
  }

  /** The body first (create-if-absent: the same bytes are one item), then the record that makes it exist. */
  private async write(c: ReviewCandidate, reason: ReviewReason, createdAt: string): Promise<void> {
    const id = createHash('sha256').update(c.body).digest('hex');
    const seenKey = `${c.project}/${id}`;
    if (this.seen.has(seenKey)) {
      this.counts.duplicates++;
      return;
    }
    try {
      await this.o.store.put(layout.reviewImage(c.project, id), c.body, {
        contentType: REVIEW_FORMATS[c.format].contentType,
        ifNoneMatch: '*',
      });
    } catch (err) {
      // The body is there already: its record too, unless an earlier write stopped between the two.
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const item: ReviewItem = {
      id,
      format: c.format,
      bytes: c.body.length,
      prediction: c.top,
      unknown: c.unknown,
      outlierScore: c.outlierScore,
      reason,
      createdAt,
      version: c.version,
      ...(c.text !== undefined ? { text: c.text } : {}),
    };
    try {
      await this.o.store.put(layout.reviewItem(c.project, id), JSON.stringify(item), {
        contentType: 'application/json',
        ifNoneMatch: '*',
      });
      this.counts.written++;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      this.counts.duplicates++;
    }
    this.remember(seenKey);
  }

  private remember(key: string): void {
    this.seen.add(key);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
  }
}

/**
 * The edge's side of the review queue: per instance, keeps a copy of photos (or texts) a project's settings ask for under
 * `review/<project>/`, bounded by a rate cap, a size cap and a cap on writes in flight. A write never delays or
 * fails a prediction: it starts after the handler returns, and its failure is logged and counted.
 */
export function createReviewRecorder(options: ReviewRecorderOptions): ReviewRecorder {
  return new StoreReviewRecorder(options);
}
