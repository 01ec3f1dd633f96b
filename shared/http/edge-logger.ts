/**
 * The logging seam of the edge app. Powertools' Logger satisfies it, and so does the JSON-lines logger below,
 * which is all Lambda@Edge needs (its console output lands in CloudWatch in the region that ran it).
 */
export interface EdgeLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** One JSON object per line on stderr, so stdout stays free for whatever the host prints. */
export function createJsonLogger(
  options: { level?: LogLevel; write?: (line: string) => void } = {},
): EdgeLogger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (level: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < min) return;
    write(JSON.stringify({ level, time: new Date().toISOString(), message, ...fields }));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

export const silentLogger: EdgeLogger = createJsonLogger({ level: 'silent' });

/** Error details for logs: name, code and message down the cause chain, without stack frames from user input. */
export function describeError(error: unknown): Record<string, unknown> {
  const chain: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && depth < 5; depth++) {
    if (e instanceof Error) {
      const code = (e as { code?: unknown }).code;
      chain.push(`${e.name}${typeof code === 'string' ? `(${code})` : ''}: ${e.message}`);
      e = e.cause;
    } else {
      chain.push(String(e));
      break;
    }
  }
  return { error: chain.join(' <- ') };
}
