import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireStackLock } from '../../shared/local/stack-lock.js';
import { resolveTarget } from './cli-context.js';

const newHome = () => {
  const home = mkdtempSync(join(tmpdir(), 'headstart-cli-context-'));
  mkdirSync(join(home, 'store'));
  return home;
};

describe('the prediction API a local command talks to', () => {
  it('is the one the home running npm start listens on, wherever PORT put it', () => {
    const home = newHome();
    const lock = acquireStackLock({ home, store: join(home, 'store') });
    try {
      lock.update({ url: 'http://127.0.0.1:8899/' });
      expect(resolveTarget({ home }, {}).api).toBe('http://127.0.0.1:8899');
      // --api still wins.
      expect(resolveTarget({ home, api: 'http://10.0.0.2:9000' }, {}).api).toBe('http://10.0.0.2:9000');
    } finally {
      lock.release();
    }
  });

  it('is HOST and PORT when nothing runs on the home, or what runs is on another host', () => {
    const home = newHome();
    expect(resolveTarget({ home }, {}).api).toBe('http://127.0.0.1:8787');
    expect(resolveTarget({ home }, { PORT: '9100' }).api).toBe('http://127.0.0.1:9100');
    // A home on a shared disk held by a stack elsewhere: the address it recorded is that machine's loopback.
    writeFileSync(
      join(home, 'stack.json'),
      JSON.stringify({
        pid: 1,
        host: 'another-machine',
        startedAt: new Date().toISOString(),
        store: join(home, 'store'),
        url: 'http://127.0.0.1:8899',
      }),
    );
    expect(resolveTarget({ home }, {}).api).toBe('http://127.0.0.1:8787');
    // Half written by a stack that died while starting: nobody holds the home.
    writeFileSync(join(home, 'stack.json'), '{"pid": 12');
    expect(resolveTarget({ home }, {}).api).toBe('http://127.0.0.1:8787');
  });
});
