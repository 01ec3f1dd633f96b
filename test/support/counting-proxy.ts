import { createServer, request as httpRequest, type Server } from 'node:http';

/** A forwarding proxy in front of an S3-compatible server that counts requests by kind. */
export interface CountingProxy {
  endpoint: string;
  /** By kind: LIST (a GET with `list-type`), GET, HEAD, PUT, DELETE, ... */
  counts: Map<string, number>;
  close(): Promise<void>;
}

export async function countingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const kind = req.method === 'GET' && url.searchParams.has('list-type') ? 'LIST' : (req.method ?? '?');
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const fwd = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    counts,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
