import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { build } from 'esbuild';
import { BundleError, BundleTooLargeError } from './infra-errors.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every bundle's handler: `index.mjs` exporting `handler`. */
export const BUNDLE_FILE = 'index.mjs';
export const BUNDLE_HANDLER = 'index.handler';

export type BundleName = 'precompute' | 'train' | 'edge' | 'function-url';

/**
 * Build-time constants of the Lambda@Edge bundle (see functions/edge/baked-config.ts): Lambda@Edge has no
 * environment variables, so whatever the function must know and cannot read from CloudFront's origin custom
 * headers is compiled in.
 */
export interface EdgeConstants {
  bucket?: string;
  region?: string;
  backboneId?: string;
  requireKeys?: boolean;
  pointerTtlSeconds?: number;
}

export interface BundleSpec {
  name: BundleName;
  /** Entry file, relative to the repository root. */
  entry: string;
  define?: Record<string, string>;
  /** Zipped limit of the target (Lambda@Edge origin-request: 50 MB); regional Lambda is bounded unzipped. */
  maxZippedBytes?: number;
}

export interface BuiltBundle {
  name: BundleName;
  /** The directory to deploy (`Code.fromAsset(dir)`): the bundle, the wasm binaries, sharp's packages. */
  dir: string;
  /** Absolute path of the bundled handler module. */
  file: string;
  handler: string;
  bytes: { bundle: number; total: number; zipped: number };
  limits: { unzipped: number; zipped?: number };
}

const MB = 1024 * 1024;
/** Lambda's limit on an unzipped deployment package, which Lambda@Edge shares. */
const LAMBDA_UNZIPPED_LIMIT = 250 * MB;
const EDGE_ORIGIN_ZIPPED_LIMIT = 50 * MB;

/** tfjs-backend-wasm's binaries: Node never takes the threaded path, so SIMD and the plain fallback suffice. */
export const WASM_FILES = ['tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm.wasm'] as const;

/** sharp loads these at run time (Lambda is Linux x64 with glibc); see sharp's package.json. */
const SHARP_PACKAGES = ['sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'] as const;

/**
 * ESM bundles of CommonJS dependencies still call `require`, and emscripten's glue reads `__dirname`: give them
 * both, named so no bundled module can shadow them.
 */
const ESM_BANNER = [
  "import { createRequire as __hsCreateRequire } from 'node:module';",
  "import { fileURLToPath as __hsFileURLToPath } from 'node:url';",
  "import { dirname as __hsDirname } from 'node:path';",
  'const require = __hsCreateRequire(import.meta.url);',
  'const __filename = __hsFileURLToPath(import.meta.url);',
  'const __dirname = __hsDirname(__filename);',
].join('\n');

function defineFor(edge: EdgeConstants): Record<string, string> {
  const d: Record<string, string> = {
    // Resolved against the bundle's directory, where the .wasm files are copied.
    __HEADSTART_WASM_DIR__: JSON.stringify('.'),
  };
  if (edge.bucket !== undefined) d.__HEADSTART_BUCKET__ = JSON.stringify(edge.bucket);
  if (edge.region !== undefined) d.__HEADSTART_REGION__ = JSON.stringify(edge.region);
  if (edge.backboneId !== undefined) d.__HEADSTART_BACKBONE__ = JSON.stringify(edge.backboneId);
  if (edge.requireKeys !== undefined) d.__HEADSTART_REQUIRE_KEYS__ = JSON.stringify(edge.requireKeys);
  if (edge.pointerTtlSeconds !== undefined)
    d.__HEADSTART_POINTER_TTL_SECONDS__ = JSON.stringify(edge.pointerTtlSeconds);
  return d;
}

/** What each function bundles. The edge variant decides whether the Lambda@Edge or Function URL entry is built. */
export function bundleSpec(name: BundleName, edge: EdgeConstants = {}): BundleSpec {
  switch (name) {
    case 'precompute':
      return { name, entry: 'functions/precompute/index.ts' };
    case 'train':
      return { name, entry: 'functions/train/index.ts' };
    case 'edge':
      return {
        name,
        entry: 'functions/edge/lambda-edge.ts',
        define: defineFor(edge),
        maxZippedBytes: EDGE_ORIGIN_ZIPPED_LIMIT,
      };
    case 'function-url':
      return { name, entry: 'functions/edge/function-url.ts' };
  }
}

/** The directory of an installed package, found the way Node would from `fromDir`. */
function packageDir(name: string, fromDir: string): string {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new BundleError(
    `package '${name}' is not installed under ${fromDir}. Lambda runs Linux x64 (glibc); on another platform install sharp's Linux binaries too: npm install --no-save --os=linux --cpu=x64 --libc=glibc sharp`,
  );
}

/** sharp, its native binaries and its runtime dependencies, as `node_modules/<name>` directories to copy. */
export function sharpRuntimePackages(root = REPO_ROOT): { name: string; dir: string }[] {
  const out = new Map<string, string>();
  const visit = (name: string, from: string) => {
    if (out.has(name)) return;
    const dir = packageDir(name, from);
    out.set(name, dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir);
  };
  for (const name of SHARP_PACKAGES) visit(name, root);
  return [...out].map(([name, dir]) => ({ name, dir }));
}

/** Only what runs: sources, headers, install scripts, docs and type declarations stay behind. */
function shipsAtRuntime(src: string, packageRoot: string): boolean {
  const rel = relative(packageRoot, src);
  if (rel === '') return true;
  const top = rel.split(sep)[0]!;
  if (['src', 'install', 'docs', 'test', 'tests', '.github'].includes(top)) return false;
  return !/\.(md|d\.ts|d\.cts|d\.mts|map|gyp|cc|h)$/i.test(rel);
}

function copyRuntimeFiles(dir: string, root: string): void {
  const wasmDir = join(packageDir('@tensorflow/tfjs-backend-wasm', root), 'dist');
  for (const file of WASM_FILES) {
    const src = join(wasmDir, file);
    if (!existsSync(src))
      throw new BundleError(`${src} is missing; is @tensorflow/tfjs-backend-wasm installed?`);
    cpSync(src, join(dir, file));
  }
  for (const { name, dir: from } of sharpRuntimePackages(root)) {
    cpSync(from, join(dir, 'node_modules', name), {
      recursive: true,
      dereference: true,
      filter: (src) => shipsAtRuntime(src, from),
    });
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Unzipped bytes and an estimate of the zip: deflated size plus a zip entry's overhead per file. */
function measure(dir: string): { total: number; zipped: number } {
  let total = 0;
  let zipped = 0;
  for (const file of walk(dir).sort()) {
    const bytes = readFileSync(file);
    total += bytes.byteLength;
    zipped += deflateRawSync(bytes, { level: 6 }).byteLength + 100 + 2 * relative(dir, file).length;
  }
  return { total, zipped };
}

export interface BuildOptions {
  /** Bundles go to `<outRoot>/<name>/`, replacing what was there. */
  outRoot: string;
  root?: string;
}

/** Bundles one function with esbuild (no Docker) into a deployable directory. */
export async function buildBundle(spec: BundleSpec, options: BuildOptions): Promise<BuiltBundle> {
  const root = options.root ?? REPO_ROOT;
  const dir = join(options.outRoot, spec.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, BUNDLE_FILE);
  try {
    await build({
      absWorkingDir: root,
      entryPoints: [join(root, spec.entry)],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'esm',
      // Lambda runs Node 22/24; the tests run the bundles on the repository's Node 20.
      target: 'node20',
      mainFields: ['module', 'main'],
      // Native code cannot be bundled; it is shipped as node_modules next to the bundle instead.
      external: ['sharp'],
      banner: { js: ESM_BANNER },
      define: spec.define ?? {},
      // Whitespace and syntax only: stack traces from Lambda keep readable names.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'eof',
      logLevel: 'warning',
    });
  } catch (cause) {
    throw new BundleError(`esbuild failed for ${spec.entry}: ${(cause as Error).message}`, { cause });
  }
  copyRuntimeFiles(dir, root);
  const { total, zipped } = measure(dir);
  const built: BuiltBundle = {
    name: spec.name,
    dir,
    file,
    handler: BUNDLE_HANDLER,
    bytes: { bundle: statSync(file).size, total, zipped },
    limits: {
      unzipped: LAMBDA_UNZIPPED_LIMIT,
      ...(spec.maxZippedBytes ? { zipped: spec.maxZippedBytes } : {}),
    },
  };
  if (total > LAMBDA_UNZIPPED_LIMIT || (spec.maxZippedBytes && zipped > spec.maxZippedBytes)) {
    throw new BundleTooLargeError(`bundle '${spec.name}' is over its limit: ${describeBundle(built)}`);
  }
  return built;
}

const mb = (n: number) => `${(n / MB).toFixed(1)} MB`;

export function describeBundle(b: BuiltBundle): string {
  const limit = b.limits.zipped
    ? `${((100 * b.bytes.zipped) / b.limits.zipped).toFixed(0)}% of the ${mb(b.limits.zipped)} zipped limit`
    : `${((100 * b.bytes.total) / b.limits.unzipped).toFixed(0)}% of the ${mb(b.limits.unzipped)} unzipped limit`;
  return `${b.name}: ${BUNDLE_FILE} ${mb(b.bytes.bundle)}, with wasm and sharp ${mb(b.bytes.total)} (~${mb(b.bytes.zipped)} zipped), ${limit}`;
}

/** Builds several bundles one after another (esbuild already uses every core for each). */
export async function buildBundles(specs: BundleSpec[], options: BuildOptions): Promise<BuiltBundle[]> {
  const out: BuiltBundle[] = [];
  for (const spec of specs) out.push(await buildBundle(spec, options));
  return out;
}
