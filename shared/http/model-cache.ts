import type { Backbone } from '../backbone/index.js';
import { HeadstartError, messageOf } from '../headstart-error.js';
import { layout } from '../layout/index.js';
import {
  type CurrentPointer,
  type DecodedVersion,
  decodeVersion,
  describeMode,
  InvalidVersionError,
  type LoadedVersion,
  type ModelManifest,
  pollPointer,
  readVersion,
} from '../models/index.js';
import type { OutlierDetector } from '../outlier/index.js';
import {
  type ProjectSettings,
  projectSettingsSchema,
  type ReviewSettings,
} from '../pipeline/project-settings.js';
import type { ObjectStore } from '../store/index.js';
import { isNotModified, parseJson, StoreError, StoreUnavailableError } from '../store/index.js';
import type { TextBackbone } from '../text/index.js';
import type { Head, SerializedHead } from '../train/index.js';
import { describeError, type EdgeLogger, silentLogger } from './edge-logger.js';
import { HttpError, NotFoundError, ServiceUnavailableError } from './http-errors.js';

/** Loads the backbone this instance serves. Called until it succeeds once; the cache shares one load. */
export type BackboneProvider = () => Promise<Backbone>;

/**
 * Loads a stored backbone by id: the trunk a fine-tuned version names, when it is not the default backbone.
 * Called until it succeeds once per id; the cache shares one load per id.
 */
export type BackboneByIdProvider = (id: string) => Promise<Backbone>;

/** Loads a stored text backbone by id: what a text version's features come from. One shared load per id. */
export type TextBackboneProvider = (id: string) => Promise<TextBackbone>;

export interface ModelCacheOptions {
  store: ObjectStore;
  backbone: BackboneProvider;
  /**
   * Loads the other backbones versions may name (fine-tuned versions run on their trunk). Without it, a version
   * on any backbone but the default is refused as 'backbone_mismatch'.
   */
  backboneById?: BackboneByIdProvider;
  /** Loads the text backbones text versions name. Without it, a text version is refused as 'backbone_mismatch'. */
  textBackbone?: TextBackboneProvider;
  /** The pointer of a project is re-checked at most this often. Default 30. */
  pointerTtlSeconds?: number;
  /** A project's settings are re-checked at most this often (and never more often than the pointer). Default 300. */
  settingsTtlSeconds?: number;
  /** Heads kept loaded, least recently used dropped first. Default 32. */
  headCacheSize?: number;
  /** Projects remembered as having no model (so unknown names do not hit the store every time). Default 1,000. */
  maxAbsentProjects?: number;
  /** A project with no model yet whose load failed for a transient reason is retried after this. Default 2,000 ms. */
  retryMs?: number;
  /** Milliseconds; injected by tests to step over the TTL. */
  clock?: () => number;
  logger?: EdgeLogger;
  loadHead?: (head: SerializedHead) => Promise<Head>;
}

/** A model held for the length of one request; `release()` once done (idempotent). */
export interface ModelLease {
  project: string;
  version: string;
  manifest: ModelManifest;
  /** The head, or the fine-tuned top, of the version: `backbone.extract` then `head.predict`. */
  head: Head;
  /**
   * The image backbone the version was trained on: the default one, or the trunk of a fine-tuned version; null
   * for a text version.
   */
  backbone: Backbone | null;
  /** The text backbone of a text version (its sentence features feed `head.predict`); null for an image version. */
  text: TextBackbone | null;
  /** The version's calibrated outlier detector (scores `backbone.extract`'s features); null for older versions. */
  outlier: OutlierDetector | null;
  /** The project's `rejectUnknown` setting, as last read (see `settingsTtlSeconds`). */
  rejectUnknown: boolean;
  /** The project's review queue settings, as last read. */
  review: ReviewSettings;
  release(): void;
}

/** The last version the cache refused to switch to, with why. */
export interface RefusedVersion {
  version: string;
  code: string;
  message: string;
}

export interface ModelCacheStats {
  backboneLoaded: boolean;
  /** Ids of the backbones loaded besides the default one (trunks of fine-tuned versions). */
  extraBackbones: string[];
  /** Projects with a model being served. */
  projects: number;
  /** Heads still holding tensors, including replaced ones that requests in flight still use. */
  liveHeads: number;
}

export interface ModelCache {
  /** The shared backbone, loading it on first call. */
  backbone(): Promise<Backbone>;
  loadedBackbone(): Backbone | undefined;
  /** The project's current model for one request; throws an HttpError (404 or 503) when there is none to serve. */
  acquire(project: string): Promise<ModelLease>;
  refusedVersion(project: string): RefusedVersion | undefined;
  stats(): ModelCacheStats;
  /**
   * Frees every head once no request uses it. Backbones belong to their providers (`backbone`, `backboneById`)
   * and are left alone.
   */
  dispose(): void;
}

interface Loaded {
  version: string;
  manifestSha256: string;
  manifest: ModelManifest;
  head: Head;
  backbone: Backbone | null;
  text: TextBackbone | null;
  outlier: OutlierDetector | null;
  refs: number;
  retired: boolean;
  disposed: boolean;
}

/** What serving takes from a project's settings. */
type ServingSettings = Pick<ProjectSettings, 'rejectUnknown' | 'review'>;

const servingSettingsOf = (s: ProjectSettings): ServingSettings => ({
  rejectUnknown: s.rejectUnknown,
  review: s.review,
});

const DEFAULT_SERVING_SETTINGS = servingSettingsOf(projectSettingsSchema.parse({}));

interface Entry {
  project: string;
  current?: Loaded;
  settings: ServingSettings;
  /** ETag of the settings file last read; undefined when there was none. */
  settingsEtag?: string;
  settingsCheckAt: number;
  /** ETag of the pointer last evaluated, served or refused; polling with it transfers nothing when unchanged. */
  seenEtag?: string;
  nextCheckAt: number;
  refreshing?: Promise<void>;
  /** Why there is nothing to serve, when `current` is undefined. */
  failure?: HttpError;
  refused?: RefusedVersion;
}

/** Refusals that re-reading the same pointer would only repeat. */
class PermanentRefusal extends HeadstartError {
  constructor(readonly http: HttpError) {
    super(http.code, http.message, { cause: http.cause, status: http.status });
    this.name = 'PermanentRefusal';
  }
}

type Refuse = (code: string, message: string, cause?: unknown) => PermanentRefusal;

function uploadHint(project: string): string {
  return `upload labelled photos to uploads/${project}/<label>/<file> (one folder per label, e.g. with \`npx headstart upload ./photos --project ${project}\`) and a model is trained from them`;
}

class ProjectModelCache implements ModelCache {
  private readonly entries = new Map<string, Entry>();
  private readonly live = new Set<Loaded>();
  private backboneLoad: Promise<Backbone> | undefined;
  private backboneValue: Backbone | undefined;
  /**
   * Backbones other than the default, by id: one shared load each, dropped on failure so the next version that
   * needs it tries again. They stay loaded once loaded, even when no version uses them any more: a store holds
   * few backbone ids (the default and its fine-tuning trunk), so this is bounded, and reloading one costs far
   * more than keeping it.
   */
  private readonly extraLoads = new Map<string, Promise<Backbone>>();
  private readonly extraValues = new Map<string, Backbone>();
  private readonly loadById: BackboneByIdProvider | undefined;
  private readonly textLoads = new Map<string, Promise<TextBackbone>>();
  private readonly loadText: TextBackboneProvider | undefined;
  private readonly ttlMs: number;
  private readonly settingsTtlMs: number;
  private readonly headCacheSize: number;
  private readonly maxAbsent: number;
  private readonly retryMs: number;
  private readonly clock: () => number;
  private readonly logger: EdgeLogger;
  private readonly loadHead: ((head: SerializedHead) => Promise<Head>) | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly provider: BackboneProvider,
    options: ModelCacheOptions,
  ) {
    this.ttlMs = (options.pointerTtlSeconds ?? 30) * 1000;
    this.settingsTtlMs = (options.settingsTtlSeconds ?? 300) * 1000;
    this.headCacheSize = Math.max(1, options.headCacheSize ?? 32);
    this.maxAbsent = options.maxAbsentProjects ?? 1000;
    this.retryMs = Math.min(options.retryMs ?? 2000, this.ttlMs);
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? silentLogger;
    this.loadHead = options.loadHead;
    this.loadById = options.backboneById;
    this.loadText = options.textBackbone;
  }

  backbone(): Promise<Backbone> {
    if (this.backboneValue) return Promise.resolve(this.backboneValue);
    this.backboneLoad ??= this.provider().then(
      (b) => {
        this.backboneValue = b;
        this.logger.info('backbone loaded', { backbone: b.manifest.id });
        return b;
      },
      (err: unknown) => {
        // Not cached: the next request tries again (the store may be back).
        this.backboneLoad = undefined;
        this.logger.error('backbone failed to load', describeError(err));
        throw new ServiceUnavailableError(
          'backbone_unavailable',
          `the backbone cannot be loaded: ${messageOf(err)}`,
          {
            cause: err,
            retryAfterSeconds: 5,
          },
        );
      },
    );
    return this.backboneLoad;
  }

  loadedBackbone(): Backbone | undefined {
    return this.backboneValue;
  }

  async acquire(project: string): Promise<ModelLease> {
    const entry = this.touch(project);
    let started = false;
    if (!entry.refreshing && this.clock() >= entry.nextCheckAt) {
      started = true;
      entry.refreshing = this.refresh(entry).finally(() => {
        entry.refreshing = undefined;
      });
    }
    // The request that notices an expired TTL waits for the check, so a new version is served as soon as it is
    // seen; requests arriving meanwhile keep using the current model rather than queueing behind the store.
    if (entry.refreshing && (started || !entry.current)) await entry.refreshing;
    const loaded = entry.current;
    // Evicted (and freed) by another request between the check finishing and this continuation: load again.
    if (loaded?.disposed) return this.acquire(project);
    if (!loaded) {
      throw (
        entry.failure ??
        new ServiceUnavailableError('model_unavailable', `no model of '${project}' is loaded`)
      );
    }
    loaded.refs++;
    let released = false;
    return {
      project,
      version: loaded.version,
      manifest: loaded.manifest,
      head: loaded.head,
      outlier: loaded.outlier,
      rejectUnknown: entry.settings.rejectUnknown,
      review: entry.settings.review,
      backbone: loaded.backbone,
      text: loaded.text,
      release: () => {
        if (released) return;
        released = true;
        loaded.refs--;
        if (loaded.retired && loaded.refs === 0) this.free(loaded);
      },
    };
  }

  refusedVersion(project: string): RefusedVersion | undefined {
    return this.entries.get(project)?.refused;
  }

  stats(): ModelCacheStats {
    let projects = 0;
    for (const e of this.entries.values()) if (e.current) projects++;
    return {
      backboneLoaded: this.backboneValue !== undefined,
      extraBackbones: [...this.extraValues.keys()],
      projects,
      liveHeads: this.live.size,
    };
  }

  dispose(): void {
    for (const e of this.entries.values()) {
      if (e.current) this.retire(e.current);
      e.current = undefined;
    }
    this.entries.clear();
  }

  /** A backbone other than the default, by id, loading it on first call; a failed load is retried next time. */
  private extraBackbone(id: string, loadById: BackboneByIdProvider): Promise<Backbone> {
    const known = this.extraValues.get(id);
    if (known) return Promise.resolve(known);
    let load = this.extraLoads.get(id);
    if (!load) {
      load = loadById(id).then(
        (b) => {
          this.extraValues.set(id, b);
          this.extraLoads.delete(id);
          this.logger.info('backbone loaded', { backbone: b.manifest.id, default: false });
          return b;
        },
        (err: unknown) => {
          this.extraLoads.delete(id);
          this.logger.error('backbone failed to load', { backbone: id, ...describeError(err) });
          throw err;
        },
      );
      this.extraLoads.set(id, load);
    }
    return load;
  }

  /** The project's entry, moved to the most recently used end. */
  private touch(project: string): Entry {
    const known = this.entries.get(project);
    if (known) {
      // Re-inserting moves it to the most recently used end; counts do not change, so nothing to evict.
      this.entries.delete(project);
      this.entries.set(project, known);
      return known;
    }
    const entry: Entry = {
      project,
      nextCheckAt: Number.NEGATIVE_INFINITY,
      settings: DEFAULT_SERVING_SETTINGS,
      settingsCheckAt: Number.NEGATIVE_INFINITY,
    };
    this.entries.set(project, entry);
    this.evict();
    return entry;
  }

  private evict(): void {
    let heads = 0;
    let absent = 0;
    for (const e of this.entries.values()) {
      if (e.current) heads++;
      else absent++;
    }
    // Map order is least recently used first. Entries with a check in flight are skipped: requests are waiting
    // on them, and the overflow is gone by the next eviction.
    for (const [project, e] of this.entries) {
      if (heads <= this.headCacheSize && absent <= this.maxAbsent) break;
      if (e.refreshing) continue;
      if (e.current && heads > this.headCacheSize) {
        this.entries.delete(project);
        this.retire(e.current);
        e.current = undefined;
        heads--;
        this.logger.debug('head evicted', { project });
      } else if (!e.current && absent > this.maxAbsent) {
        this.entries.delete(project);
        absent--;
      }
    }
  }

  /** The pointer check, and the settings check alongside it when that is due too. */
  private async refresh(entry: Entry): Promise<void> {
    const started = this.clock();
    const settings = started >= entry.settingsCheckAt ? this.refreshSettings(entry, started) : undefined;
    try {
      await this.refreshPointer(entry, started);
    } finally {
      await settings;
    }
  }

  /**
   * Re-reads the project's settings (a conditional GET once there is a file). Never fails: an unreachable store
   * keeps the last settings read, and retries sooner; an unreadable file serves the defaults.
   */
  private async refreshSettings(entry: Entry, started: number): Promise<void> {
    const { project } = entry;
    const key = layout.projectSettings(project);
    try {
      const got = entry.settingsEtag
        ? await this.store.getIfChanged(key, entry.settingsEtag)
        : await this.store.get(key);
      entry.settingsCheckAt = started + this.settingsTtlMs;
      if (isNotModified(got)) return;
      entry.settingsEtag = got?.etag;
      if (!got) {
        entry.settings = DEFAULT_SERVING_SETTINGS;
        return;
      }
      try {
        entry.settings = servingSettingsOf(parseJson(got.body, projectSettingsSchema));
      } catch (err) {
        entry.settings = DEFAULT_SERVING_SETTINGS;
        this.logger.warn('project settings unreadable; serving with the defaults', {
          project,
          ...describeError(err),
        });
      }
    } catch (err) {
      entry.settingsCheckAt = started + this.retryMs;
      this.logger.warn('project settings check failed; keeping the last settings read', {
        project,
        ...describeError(err),
      });
    }
  }

  private async refreshPointer(entry: Entry, started: number): Promise<void> {
    const { project } = entry;
    // Started alongside the pointer read so a cold instance overlaps the two; failures surface below.
    const backbone = this.backbone();
    backbone.catch(() => {});
    try {
      const polled = await pollPointer(this.store, project, entry.seenEtag);
      if (polled.unchanged) {
        entry.nextCheckAt = started + this.ttlMs;
        return;
      }
      const read = polled.read;
      if (!read) {
        if (entry.current) {
          this.logger.warn('pointer removed; no longer serving', { project, version: entry.current.version });
          this.retire(entry.current);
          entry.current = undefined;
        }
        entry.seenEtag = undefined;
        entry.failure = await this.explainMissing(project);
        entry.nextCheckAt = started + this.ttlMs;
        return;
      }
      const { pointer, etag } = read;
      const current = entry.current;
      if (
        current &&
        current.version === pointer.version &&
        current.manifestSha256 === pointer.manifestSha256
      ) {
        entry.seenEtag = etag;
        entry.nextCheckAt = started + this.ttlMs;
        return;
      }
      let loaded: Loaded;
      try {
        loaded = await this.loadVersion(project, pointer, backbone);
      } catch (err) {
        if (!(err instanceof PermanentRefusal)) throw err;
        entry.seenEtag = etag;
        entry.refused = { version: pointer.version, code: err.http.code, message: err.http.message };
        if (!current) entry.failure = err.http;
        this.logger.error('version refused; keeping the model in service', {
          project,
          refused: pointer.version,
          serving: current?.version ?? null,
          ...describeError(err.http),
        });
        entry.nextCheckAt = started + this.ttlMs;
        return;
      }
      entry.current = loaded;
      entry.seenEtag = etag;
      entry.failure = undefined;
      entry.refused = undefined;
      entry.nextCheckAt = started + this.ttlMs;
      if (current) this.retire(current);
      this.logger.info('model loaded', {
        project,
        version: loaded.version,
        replaced: current?.version ?? null,
      });
      this.evict();
    } catch (err) {
      const http = err instanceof HttpError ? err : undefined;
      const unavailable = err instanceof StoreUnavailableError;
      entry.failure =
        http ??
        new ServiceUnavailableError(
          unavailable ? 'store_unavailable' : 'model_unavailable',
          unavailable
            ? `the model store is unreachable and no model of '${project}' is loaded yet; try again shortly`
            : `the model of '${project}' cannot be loaded: ${messageOf(err)}`,
          { cause: err, retryAfterSeconds: Math.ceil(this.retryMs / 1000) },
        );
      this.logger.warn(
        entry.current ? 'model check failed; serving the last good model' : 'model check failed',
        {
          project,
          serving: entry.current?.version ?? null,
          ...describeError(err),
        },
      );
      entry.nextCheckAt = started + (entry.current ? this.ttlMs : this.retryMs);
    }
  }

  /** Reads, verifies and loads a version; anything wrong with the version itself is a PermanentRefusal. */
  private async loadVersion(
    project: string,
    pointer: CurrentPointer,
    defaultBackbone: Promise<Backbone>,
  ): Promise<Loaded> {
    const { version } = pointer;
    const refuse: Refuse = (code, message, cause) =>
      new PermanentRefusal(
        new ServiceUnavailableError(code, message, cause === undefined ? undefined : { cause }),
      );
    let read: LoadedVersion;
    try {
      read = await readVersion(this.store, project, version, { forServing: true });
    } catch (err) {
      // An unreachable store says nothing about the version; a missing, malformed or mismatching file does.
      const aboutVersion =
        err instanceof InvalidVersionError ||
        (err instanceof StoreError && !(err instanceof StoreUnavailableError));
      if (!aboutVersion) throw err;
      throw refuse(
        'model_invalid',
        `version ${version} of '${project}' cannot be used: ${messageOf(err)}`,
        err,
      );
    }
    const { manifest, manifestSha256 } = read;
    if (manifestSha256 !== pointer.manifestSha256) {
      throw refuse(
        'model_invalid',
        `version ${version} of '${project}' has a manifest with sha256 ${manifestSha256}, the pointer says ${pointer.manifestSha256}`,
      );
    }
    // Checked whole before any backbone is loaded for it.
    let decoded: DecodedVersion;
    try {
      decoded = decodeVersion(read, {
        where: `version ${version} of '${project}'`,
        ...(this.loadHead ? { loadHead: this.loadHead } : {}),
      });
    } catch (err) {
      if (!(err instanceof InvalidVersionError)) throw err;
      throw refuse('model_invalid', err.message, err.cause);
    }
    const what = describeMode(decoded.mode);
    const text = isTextVersion(manifest) ? await this.textBackboneFor(project, manifest, refuse) : null;
    const backbone = text ? null : await this.backboneFor(project, manifest, await defaultBackbone, refuse);
    let head: Head;
    let outlier: OutlierDetector | null;
    try {
      ({ head, outlier } = await decoded.load());
    } catch (err) {
      throw refuse(
        'model_invalid',
        `the ${what} of version ${version} of '${project}' does not load: ${messageOf(err)}`,
        err,
      );
    }
    try {
      // One prediction now sets up the head's kernels off the request path, and proves the head can predict.
      const probe = new Float32Array(manifest.backbone.featureDim);
      const probs = head.predict(probe, 1);
      outlier?.score(probe, 1, probs);
    } catch (err) {
      head.dispose();
      throw refuse(
        'model_invalid',
        `the ${what} of version ${version} of '${project}' cannot predict: ${messageOf(err)}`,
        err,
      );
    }
    const loaded: Loaded = {
      version,
      manifestSha256,
      manifest,
      head,
      backbone,
      text,
      outlier,
      refs: 0,
      retired: false,
      disposed: false,
    };
    this.live.add(loaded);
    return loaded;
  }

  /**
   * The backbone `manifest` was trained on: the default one when the ids agree, otherwise (a fine-tuned
   * version's trunk) loaded by id. Its weights, input size and feature width must be the manifest's.
   */
  private async backboneFor(
    project: string,
    manifest: ModelManifest,
    defaultBackbone: Backbone,
    refuse: Refuse,
  ): Promise<Backbone> {
    const { version } = manifest;
    const want = manifest.backbone;
    const def = defaultBackbone.manifest;
    let backbone = defaultBackbone;
    if (want.id !== def.id) {
      if (!this.loadById) {
        throw refuse(
          'backbone_mismatch',
          `version ${version} of '${project}' was trained on backbone '${want.id}' (weights ${want.weightsSha256.slice(0, 12)}), but this edge serves '${def.id}' (weights ${def.weightsSha256.slice(0, 12)}): retrain the project on '${def.id}' or deploy the edge with '${want.id}'`,
        );
      }
      try {
        backbone = await this.extraBackbone(want.id, this.loadById);
      } catch (err) {
        // Not a refusal: the store may be back, or the backbone published, by the next check.
        throw new ServiceUnavailableError(
          'backbone_unavailable',
          `version ${version} of '${project}' runs on backbone '${want.id}', which cannot be loaded: ${messageOf(err)}`,
          { cause: err, retryAfterSeconds: Math.ceil(this.retryMs / 1000) },
        );
      }
    }
    const have = backbone.manifest;
    if (
      want.id !== have.id ||
      want.weightsSha256 !== have.weightsSha256 ||
      want.featureDim !== backbone.featureDim ||
      want.inputSize !== backbone.inputSize
    ) {
      throw refuse(
        'backbone_mismatch',
        `version ${version} of '${project}' was trained on backbone '${want.id}' (weights ${want.weightsSha256.slice(0, 12)}, input ${want.inputSize}, feature ${want.featureDim}), but the backbone '${have.id}' this edge loads has weights ${have.weightsSha256.slice(0, 12)}, input ${backbone.inputSize}, feature ${backbone.featureDim}: retrain the project on the backbone now stored under '${have.id}'`,
      );
    }
    return backbone;
  }

  /** The text backbone a text version names, loaded once per id; its weights and width must be the manifest's. */
  private async textBackboneFor(
    project: string,
    manifest: ModelManifest,
    refuse: Refuse,
  ): Promise<TextBackbone> {
    const { version } = manifest;
    const want = manifest.backbone;
    const loadText = this.loadText;
    if (!loadText) {
      throw refuse(
        'backbone_mismatch',
        `version ${version} of '${project}' is a text version (text backbone '${want.id}'), and this edge serves images only`,
      );
    }
    let load = this.textLoads.get(want.id);
    if (!load) {
      load = loadText(want.id);
      this.textLoads.set(want.id, load);
      load.then(
        (t) => this.logger.info('text backbone loaded', { backbone: t.manifest.id }),
        (err: unknown) => {
          // Not kept: the store may be back, or the backbone published, by the next check.
          this.textLoads.delete(want.id);
          this.logger.error('text backbone failed to load', { backbone: want.id, ...describeError(err) });
        },
      );
    }
    let text: TextBackbone;
    try {
      text = await load;
    } catch (err) {
      throw new ServiceUnavailableError(
        'backbone_unavailable',
        `version ${version} of '${project}' runs on text backbone '${want.id}', which cannot be loaded: ${messageOf(err)}`,
        { cause: err, retryAfterSeconds: Math.ceil(this.retryMs / 1000) },
      );
    }
    if (text.manifest.weightsSha256 !== want.weightsSha256 || text.featurizer.dim !== want.featureDim) {
      throw refuse(
        'backbone_mismatch',
        `version ${version} of '${project}' was trained on text backbone '${want.id}' (weights ${want.weightsSha256.slice(0, 12)}, feature ${want.featureDim}), but the one stored under that id has weights ${text.manifest.weightsSha256.slice(0, 12)}, feature ${text.featurizer.dim}`,
      );
    }
    return text;
  }

  private async explainMissing(project: string): Promise<HttpError> {
    const [settings, uploads] = await Promise.all([
      this.store.head(layout.projectSettings(project)),
      hasAny(this.store, layout.projectUploads(project)),
    ]);
    if (settings || uploads) {
      return new NotFoundError(
        'no_model',
        `project '${project}' has no trained model yet: a model is trained once every label has enough photos under uploads/${project}/<label>/ (see \`npx headstart status --project ${project}\`)`,
      );
    }
    return new NotFoundError(
      'unknown_project',
      `project '${project}' does not exist yet: ${uploadHint(project)}`,
    );
  }

  private retire(loaded: Loaded): void {
    loaded.retired = true;
    if (loaded.refs === 0) this.free(loaded);
  }

  private free(loaded: Loaded): void {
    if (loaded.disposed) return;
    loaded.disposed = true;
    this.live.delete(loaded);
    loaded.head.dispose();
  }
}

/** Texts have no input size: a text version's backbone entry records 1 (see train-project.ts). */
function isTextVersion(manifest: ModelManifest): boolean {
  return manifest.backbone.inputSize === 1;
}

async function hasAny(store: ObjectStore, prefix: string): Promise<boolean> {
  for await (const _ of store.list(prefix)) return true;
  return false;
}

/**
 * Per-instance model state for the edge: the default backbone shared by every project, the trunks of fine-tuned
 * versions loaded by id on first use (`backboneById`), and per project the head or fine-tuned top of the current
 * version, re-checked at most every `pointerTtlSeconds` with a conditional GET. A version that fails its sha256
 * checks, does not load, or was trained on a backbone this edge cannot serve never replaces the one being
 * served; a store that cannot be reached leaves the last good model in service. Replaced heads are disposed once
 * the last request holding them releases its lease.
 */
export function createModelCache(options: ModelCacheOptions): ModelCache {
  return new ProjectModelCache(options.store, options.backbone, options);
}
