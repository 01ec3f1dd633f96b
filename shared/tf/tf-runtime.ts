import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

export type TfBackendName = 'wasm' | 'cpu';

export interface TfRuntimeOptions {
  backend?: TfBackendName;
  /**
   * Directory (or URL prefix ending in '/') holding tfjs-backend-wasm's .wasm binaries. Needed when running
   * from an esbuild bundle, where the backend cannot find them next to its own module.
   */
  wasmDir?: string;
}

let ready: Promise<TfBackendName> | undefined;
let readyFor: TfBackendName | undefined;

/**
 * Selects and initializes the tfjs backend once per process. Importing only tfjs-core and the wasm backend
 * (not all of @tensorflow/tfjs) keeps cold start short.
 */
export async function initTf(options: TfRuntimeOptions = {}): Promise<TfBackendName> {
  const backend = options.backend ?? 'wasm';
  if (ready && readyFor === backend) return ready;
  readyFor = backend;
  ready = (async () => {
    if (backend === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
    if (backend === 'wasm' && options.wasmDir) {
      setWasmPaths(options.wasmDir.endsWith('/') ? options.wasmDir : `${options.wasmDir}/`);
    }
    const ok = await tf.setBackend(backend);
    if (!ok) throw new Error(`tfjs backend '${backend}' failed to initialize`);
    await tf.ready();
    return backend;
  })();
  return ready;
}

export { tf };
