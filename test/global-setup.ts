import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** An S3-compatible endpoint backed by moto_server, or '' when none is available. */
    motoEndpoint: string;
    motoSkipReason: string;
  }
}

let moto: ChildProcess | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(endpoint: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.status < 500) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export async function setup(project: TestProject): Promise<void> {
  // .ci/run starts one moto_server for the whole run and passes it in; locally we start our own.
  const given = process.env.HEADSTART_TEST_S3_ENDPOINT;
  if (given) {
    project.provide('motoEndpoint', given);
    project.provide('motoSkipReason', '');
    return;
  }
  const found = spawnSync('moto_server', ['--help'], { stdio: 'ignore' });
  if (found.error || found.status !== 0) {
    const reason = 'moto_server is not installed (pip install "moto[server]"); S3 tests are skipped';
    console.warn(`[headstart tests] ${reason}`);
    project.provide('motoEndpoint', '');
    project.provide('motoSkipReason', reason);
    return;
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  if (!(await waitUntilUp(endpoint, 20_000))) {
    moto.kill();
    const reason = `moto_server did not start on ${endpoint}; S3 tests are skipped`;
    console.warn(`[headstart tests] ${reason}`);
    project.provide('motoEndpoint', '');
    project.provide('motoSkipReason', reason);
    return;
  }
  project.provide('motoEndpoint', endpoint);
  project.provide('motoSkipReason', '');
}

export async function teardown(): Promise<void> {
  moto?.kill();
}
