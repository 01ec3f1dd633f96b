import { vi } from 'vitest';
import { main } from '../../functions/cli/headstart.js';

/** Runs `headstart <args> --home <home>` in-process, capturing what it prints and its exit code. */
export async function runCli(
  home: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  process.exitCode = undefined;
  const code = await main([...args, '--home', home]);
  process.exitCode = undefined;
  vi.restoreAllMocks();
  return { code, out: out.join('\n'), err: err.join('\n') };
}
