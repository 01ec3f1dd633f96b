import { createHash } from 'node:crypto';
import type { Backbone } from '../backbone/index.js';
import { DatasetError, TextUploadError, UploadTooLargeError } from '../dataset/dataset-errors.js';
import type { DatasetIndex } from '../dataset/dataset-index.js';
import { encodeSparseFeatures } from '../dataset/feature-file.js';
import { clearQuarantine, putQuarantine, readQuarantine } from '../dataset/quarantine.js';
import type { UploadEvent } from '../dataset/s3-events.js';
import { compareSequencers } from '../dataset/sequencer.js';
import { decodeTextUpload, type Modality, modalityMismatch, modalityOfKey } from '../dataset/text-upload.js';
import { parseUploadKey, projectOf } from '../dataset/upload-key.js';
import type { DualExtractor } from '../finetune/index.js';
import { ImageError } from '../image/index.js';
import { layout } from '../layout/index.js';
import type { ObjectStore, StoredObject } from '../store/index.js';
import {
  CorruptObjectError,
  InvalidKeyError,
  PreconditionFailedError,
  StoreError,
  StoreUnavailableError,
} from '../store/index.js';
import { sameEtag } from '../store/store-input.js';
import { type TextBackbone, TextBackboneNotFoundError } from '../text/index.js';
import type { FeatureBatcher } from './feature-batcher.js';
import { fixProjectModality, type ProjectSettings, readProjectSettings } from './project-settings.js';
import {
  cacheViewFeatures,
  createViewExtractors,
  type ViewExtractors,
  type ViewRequest,
} from './view-features.js';

export type UploadOutcome =
  | { key: string; status: 'indexed'; project: string; label: string; sha256: string; computed: number }
  | { key: string; status: 'quarantined'; project?: string; code: string; message: string }
  | { key: string; status: 'removed'; project: string }
  | { key: string; status: 'stale' | 'missing' | 'ignored'; project?: string };

/** What extraction caches of each photo of a project with these settings. */
export function viewRequest(settings: ProjectSettings, maxPixels?: number): ViewRequest {
  return {
    views: ['identity', ...settings.augmentations],
    trunk: settings.trainingMode !== 'head',
    ...(maxPixels ? { maxPixels } : {}),
  };
}

export interface ExtractDeps {
  store: ObjectStore;
  backbone: Backbone;
  index: DatasetIndex;
  /** Default 20 MB. */
  maxUploadBytes?: number;
  /** Default 40 megapixels. */
  maxPixels?: number;
  /** Called once per project with accepted changes; the training side debounces. */
  requestRetrain: (project: string) => Promise<void>;
  batcher?: FeatureBatcher;
  /**
   * The default backbone with its fine-tuning trunk, run as one pass: when given, uploads of projects that may
   * fine-tune also get the trunk's activation cached. Its backbone must be `backbone`.
   */
  dual?: DualExtractor;
  /**
   * The text backbone that featurizes `.txt` uploads, loaded (or built) on the first one, so that photo-only
   * stacks never pay for it. Without it a text upload fails with TextBackboneNotFoundError, to be retried.
   */
  textBackbone?: () => Promise<TextBackbone>;
  now?: () => Date;
}

export interface UploadExtractor {
  /** Handles one event. Throws only for failures worth a retry (store unreachable, contention). */
  handle(event: UploadEvent): Promise<UploadOutcome>;
}

class Extractor implements UploadExtractor {
  private readonly extractors: ViewExtractors;
  private readonly settings = new Map<string, Promise<ProjectSettings>>();
  private readonly maxUploadBytes: number;

  constructor(private readonly deps: ExtractDeps) {
    this.extractors = createViewExtractors({
      backbone: deps.backbone,
      ...(deps.batcher ? { batcher: deps.batcher } : {}),
      ...(deps.dual ? { dual: deps.dual } : {}),
    });
    this.maxUploadBytes = deps.maxUploadBytes ?? 20 * 1024 * 1024;
  }

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  private projectSettings(project: string): Promise<ProjectSettings> {
    let s = this.settings.get(project);
    if (!s) {
      s = readProjectSettings(this.deps.store, project);
      this.settings.set(project, s);
      // A settings file that fails to read or parse is read again next time, so fixing it needs no restart.
      s.catch(() => this.settings.delete(project));
    }
    return s;
  }

  /** Caches a text's sentence feature under the text backbone, create-if-absent; 1 when it wrote it. */
  private async cacheText(body: Uint8Array, sha256: string): Promise<number> {
    if (!this.deps.textBackbone) {
      throw new TextBackboneNotFoundError('this extractor has no text backbone; text uploads wait for one');
    }
    const backbone = await this.deps.textBackbone();
    const key = layout.feature(backbone.manifest.id, sha256);
    if (await this.deps.store.head(key)) return 0;
    const feature = backbone.featurizer.featurize(decodeTextUpload(body));
    try {
      await this.deps.store.put(key, encodeSparseFeatures(backbone.manifest.id, feature), {
        ifNoneMatch: '*',
      });
      return 1;
    } catch (err) {
      if (err instanceof PreconditionFailedError) return 0;
      throw err;
    }
  }

  /**
   * The project's modality, fixed by this upload when its settings name none yet: to `wanted`, except that a
   * project holding indexed photos is an image project (it was made before projects had a modality), so a stray
   * text does not turn it into a text project. The index is read once per such project, as its modality is then
   * written.
   */
  private async modalityOf(project: string, wanted: Modality): Promise<Modality> {
    const cached = await this.projectSettings(project);
    if (cached.modality) return cached.modality;
    const hasPhotos =
      wanted === 'text' &&
      (await this.deps.index.snapshot(project)).some((e) => modalityOfKey(e.key) === 'image');
    const fixed = await fixProjectModality(this.deps.store, project, hasPhotos ? 'image' : wanted);
    this.settings.set(project, Promise.resolve(fixed));
    return fixed.modality ?? wanted;
  }

  async handle(event: UploadEvent): Promise<UploadOutcome> {
    return event.type === 'created' ? this.created(event) : this.removed(event);
  }

  private async removed(event: UploadEvent): Promise<UploadOutcome> {
    const project = projectOf(event.key);
    if (!project) {
      await clearQuarantine(this.deps.store, event.key);
      return { key: event.key, status: 'ignored' };
    }
    const applied = await this.deps.index.apply(project, {
      state: 'deleted',
      key: event.key,
      sequencer: event.sequencer,
      at: this.now(),
    });
    // Stale or not, ask: a redelivered event must not lose the retrain its first delivery may have failed to
    // request, and the trainer skips datasets that did not change.
    await this.deps.requestRetrain(project);
    if (applied.result === 'stale') return { key: event.key, status: 'stale', project };
    await clearQuarantine(this.deps.store, event.key);
    return { key: event.key, status: 'removed', project };
  }

  /**
   * Sets an upload aside: the index entry (with the ETag, so a reconciler comparing listings with the index sees
   * it as handled), then the record and the copy of the bytes. A repeat of a refusal already recorded for the
   * same ETag and code (a re-put of the same bytes, a reconciler's second look) rewrites nothing but the
   * index's sequencer, and asks for no retrain: the dataset did not change.
   */
  private async quarantine(
    event: UploadEvent,
    err: DatasetError | ImageError,
    found: { body?: Uint8Array; sha256?: string; etag?: string; bytes?: number; note?: string } = {},
  ): Promise<UploadOutcome> {
    const project = projectOf(event.key);
    const { body, sha256, etag } = found;
    const message = found.note ? `${err.message} (${found.note})` : err.message;
    const outcome: UploadOutcome = {
      key: event.key,
      status: 'quarantined',
      ...(project ? { project } : {}),
      code: err.code,
      message,
    };
    if (project) {
      const applied = await this.deps.index.apply(project, {
        state: 'quarantined',
        key: event.key,
        code: err.code,
        ...(etag ? { etag } : {}),
        sequencer: event.sequencer,
        at: this.now(),
      });
      if (applied.result === 'stale') {
        await this.deps.requestRetrain(project);
        return { key: event.key, status: 'stale', project };
      }
      const prev = applied.previous;
      if (
        prev?.state === 'quarantined' &&
        prev.code === err.code &&
        etag &&
        prev.etag &&
        sameEtag(prev.etag, etag)
      ) {
        return outcome;
      }
    } else if (etag) {
      // Keys with no project have no index entry; their record says which ETag was set aside.
      const prev = await readQuarantine(this.deps.store, event.key);
      if (prev?.code === err.code && prev.etag && sameEtag(prev.etag, etag)) return outcome;
    }
    await putQuarantine(
      this.deps.store,
      {
        key: event.key,
        ...(project ? { project } : {}),
        code: err.code,
        message,
        ...(sha256 ? { sha256 } : {}),
        ...(etag ? { etag } : {}),
        bytes: found.bytes ?? body?.byteLength ?? 0,
        sequencer: event.sequencer,
        at: this.now(),
      },
      body,
    );
    // The upload may have replaced a good one at the same key, which must leave the training set.
    if (project) await this.deps.requestRetrain(project);
    return outcome;
  }

  /**
   * What the store says of the object (size, ETag), or `unreadable` when the store refuses the key itself (a
   * control character put there by another tool) or cannot read the object: a problem of this object, not one to
   * retry. The size the event carries is trusted to refuse early; otherwise one HEAD, so that an oversized
   * upload is never downloaded.
   */
  private async look(event: UploadEvent): Promise<ObjectLook> {
    try {
      const info = await this.deps.store.head(event.key);
      return info
        ? { found: true, size: info.size, etag: info.etag, lastModified: info.lastModified }
        : { found: false };
    } catch (err) {
      if (!(err instanceof InvalidKeyError || err instanceof CorruptObjectError)) throw err;
      const listed = await this.listedInfo(event.key);
      const etag = event.etag ?? listed?.etag;
      const size = event.size ?? listed?.size;
      return {
        found: true,
        unreadable: err.message,
        ...(etag ? { etag } : {}),
        ...(size !== undefined ? { size } : {}),
      };
    }
  }

  /**
   * The listing entry of a key the store will not address directly: listed under the longest prefix that the
   * store accepts. Best effort (a store may refuse to list such a key at all).
   */
  private async listedInfo(key: string): Promise<{ etag: string; size: number } | undefined> {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: cutting the key before its first control character.
    const cut = key.search(/[\u0000-\u001f\u007f]/);
    const prefix = cut >= 0 ? key.slice(0, cut) : key.slice(0, key.lastIndexOf('/') + 1);
    try {
      for await (const o of this.deps.store.list(prefix)) {
        if (o.key === key) return { etag: o.etag, size: o.size };
      }
    } catch (err) {
      if (!(err instanceof StoreError) || err instanceof StoreUnavailableError) throw err;
    }
    return undefined;
  }

  /** Reads the body of an upload the store can address; undefined when it is gone or cannot be read. */
  private async readBody(key: string): Promise<StoredObject | undefined> {
    try {
      return await this.deps.store.get(key);
    } catch (err) {
      if (err instanceof InvalidKeyError || err instanceof CorruptObjectError) return undefined;
      throw err;
    }
  }

  /** A key that breaks the naming rules: set aside with a copy of its bytes when the store can read them. */
  private async refuseName(event: UploadEvent, err: DatasetError): Promise<UploadOutcome> {
    const look = await this.look(event);
    if (!look.found) return { key: event.key, status: 'missing', ...projectField(event.key) };
    const tooLarge = look.size !== undefined && look.size > this.maxUploadBytes;
    const obj = look.unreadable || tooLarge ? undefined : await this.readBody(event.key);
    const note = look.unreadable
      ? 'the store cannot read this key, so no copy of the bytes is kept; rename or delete the file'
      : tooLarge
        ? `no copy kept: it is ${look.size} bytes, over the ${this.maxUploadBytes}-byte limit`
        : undefined;
    const etag = obj?.etag ?? look.etag;
    const bytes = obj?.body.byteLength ?? look.size;
    return this.quarantine(event, err, {
      ...(obj ? { body: obj.body } : {}),
      ...(etag ? { etag } : {}),
      ...(bytes !== undefined ? { bytes } : {}),
      ...(note ? { note } : {}),
    });
  }

  private tooLarge(bytes: number): UploadTooLargeError {
    return new UploadTooLargeError(`upload is ${bytes} bytes; the limit is ${this.maxUploadBytes}`);
  }

  private async created(event: UploadEvent): Promise<UploadOutcome> {
    const { store, index } = this.deps;
    let parsed: ReturnType<typeof parseUploadKey>;
    try {
      parsed = parseUploadKey(event.key);
    } catch (err) {
      if (err instanceof DatasetError) {
        if (err.code === 'not_an_upload') return { key: event.key, status: 'ignored' };
        return this.refuseName(event, err);
      }
      throw err;
    }
    const { project, label } = parsed;
    const existing = await index.entry(project, event.key);
    // Checked again when the index is written; checking first saves the download and the backbone for duplicates.
    if (existing && compareSequencers(existing.sequencer, event.sequencer) >= 0) {
      await this.deps.requestRetrain(project);
      return { key: event.key, status: 'stale', project };
    }
    const notCopied = 'not copied into quarantine; it stays at its key until you delete or replace it';
    // Refused from the size alone, before any read: a 30 MB upload is never downloaded.
    if (event.size !== undefined && event.size > this.maxUploadBytes) {
      return this.quarantine(event, this.tooLarge(event.size), {
        ...(event.etag ? { etag: event.etag } : {}),
        bytes: event.size,
        note: notCopied,
      });
    }
    // With the size from the event already checked, read at once; only a read that fails needs the HEAD, to tell
    // a vanished upload from one the store cannot read. Without it, the HEAD comes first, so that an oversized
    // upload is never downloaded.
    const direct = event.size !== undefined ? await this.readBody(event.key) : undefined;
    const look: ObjectLook = direct
      ? { found: true, size: direct.body.byteLength, etag: direct.etag }
      : await this.look(event);
    // Gone already: its delete event (a later sequencer) will tombstone it.
    if (!look.found) return { key: event.key, status: 'missing', project };
    if (look.size !== undefined && look.size > this.maxUploadBytes) {
      return this.quarantine(event, this.tooLarge(look.size), {
        ...(look.etag ? { etag: look.etag } : {}),
        bytes: look.size,
        note: notCopied,
      });
    }
    const obj = direct ?? (look.unreadable ? undefined : await this.readBody(event.key));
    if (!obj) {
      if (!look.unreadable) return { key: event.key, status: 'missing', project };
      return this.quarantine(
        event,
        new DatasetError('unreadable_upload', `the store cannot read this upload: ${look.unreadable}`),
        {
          ...(look.etag ? { etag: look.etag } : {}),
          ...(look.size !== undefined ? { bytes: look.size } : {}),
        },
      );
    }
    if (obj.body.byteLength > this.maxUploadBytes) {
      // Replaced by a larger file between the HEAD and the GET.
      return this.quarantine(event, this.tooLarge(obj.body.byteLength), {
        etag: obj.etag,
        bytes: obj.body.byteLength,
        note: notCopied,
      });
    }
    const sha256 = createHash('sha256').update(obj.body).digest('hex');
    const found = { body: obj.body, sha256, etag: obj.etag };
    const modality = modalityOfKey(event.key);

    let computed: number;
    try {
      // A text is checked before it fixes its project's modality, so an empty first file fixes nothing.
      if (modality === 'text') decodeTextUpload(obj.body);
      const fixed = await this.modalityOf(project, modality);
      if (fixed !== modality)
        return this.quarantine(event, modalityMismatch(project, fixed, modality), found);
      computed =
        modality === 'text'
          ? await this.cacheText(obj.body, sha256)
          : await cacheViewFeatures(
              store,
              this.extractors,
              { body: obj.body, sha256 },
              viewRequest(await this.projectSettings(project), this.deps.maxPixels),
            );
    } catch (err) {
      if (err instanceof ImageError || err instanceof TextUploadError)
        return this.quarantine(event, err, found);
      throw err;
    }
    // The features exist before the index names them, so training never meets an example without features.
    const applied = await index.apply(project, {
      state: 'example',
      key: event.key,
      label,
      sha256,
      bytes: obj.body.byteLength,
      etag: obj.etag,
      uploadedAt: uploadTime(obj.lastModified, event.eventTime),
      sequencer: event.sequencer,
      at: this.now(),
    });
    await this.deps.requestRetrain(project);
    if (applied.result === 'stale') return { key: event.key, status: 'stale', project };
    if (applied.previous?.state === 'quarantined') await clearQuarantine(store, event.key);
    return { key: event.key, status: 'indexed', project, label, sha256, computed };
  }
}

type ObjectLook =
  | { found: false }
  | { found: true; size?: number; etag?: string; lastModified?: Date; unreadable?: string };

function projectField(key: string): { project?: string } {
  const project = projectOf(key);
  return project ? { project } : {};
}

/**
 * When an upload was made: the object's last-modified time, or the event's time when that is the same moment
 * read more finely (S3 reports Last-Modified to the second; its events carry milliseconds).
 */
export function uploadTime(lastModified: Date, eventTime: string): string {
  const lm = lastModified.getTime();
  const ev = Date.parse(eventTime);
  if (lm % 1000 === 0 && ev >= lm && ev < lm + 1000) return new Date(ev).toISOString();
  return lastModified.toISOString();
}

export function createUploadExtractor(deps: ExtractDeps): UploadExtractor {
  return new Extractor(deps);
}
