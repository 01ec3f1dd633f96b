import { existsSync, type FSWatcher, readdirSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';

/**
 * Calls `onChange` when anything below `root/top` is created, replaced or removed. One inotify watch per folder
 * (never per file, unlike Node 20's recursive fs.watch, which watches every file and would cost one watch per
 * feature file), folders added and dropped as they come and go; `root` itself must stay (the FS store's objects/
 * does). Writes to the FS store land by rename, which a folder's watch reports.
 */
export function watchFolders(options: {
  root: string;
  top: string;
  onChange: () => void;
  onError: (err: Error) => void;
}): { close(): void } {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  const drop = (dir: string) => {
    for (const [d, w] of watchers) {
      if (d === dir || d.startsWith(`${dir}/`)) {
        w.close();
        watchers.delete(d);
      }
    }
  };
  const add = (dir: string) => {
    if (closed || watchers.has(dir)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, (_event, name) => {
        if (dir === options.root && name !== options.top) return;
        options.onChange();
        if (!existsSync(dir)) return drop(dir);
        if (name) visit(join(dir, String(name)));
      });
    } catch {
      return; // gone already
    }
    w.on('error', () => drop(dir));
    watchers.set(dir, w);
    if (dir === options.root) return visit(join(dir, options.top));
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) add(join(dir, e.name));
    } catch {
      drop(dir);
    }
  };
  const visit = (path: string) => {
    try {
      if (statSync(path).isDirectory()) add(path);
    } catch {
      drop(path);
    }
  };
  try {
    add(options.root);
  } catch (err) {
    options.onError(err as Error);
  }
  return {
    close() {
      closed = true;
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
