import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { buildRegistry, type Registry } from '../../src/registry/server.js';

/** A registry started for one test, on 127.0.0.1 and a free port, with storage in a fresh directory. */
export interface TestRegistry extends Registry {
  url: string;
  /** `127.0.0.1:PORT`, as clients name it. */
  host: string;
  root: string;
  close(): Promise<void>;
}

/** Deep-merges config objects (plain objects only). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Starts a Sluice registry for a test; `config` is merged over a quiet default with deletion enabled. */
export async function startRegistry(config: Record<string, unknown> = {}, root?: string): Promise<TestRegistry> {
  const dir = root ?? (await mkdtemp(join(tmpdir(), 'sluice-test-')));
  const raw = merge(
    {
      log: { level: 'silent' },
      http: { addr: '127.0.0.1:0' },
      storage: { filesystem: { rootdirectory: dir }, delete: { enabled: true } },
    },
    config,
  );
  const { config: cfg } = validateConfig(raw);
  const reg = buildRegistry({ config: cfg, logger: false });
  const address = await reg.app.listen({ host: '127.0.0.1', port: 0 });
  const host = address.replace(/^http:\/\//, '');
  return {
    ...reg,
    url: address,
    host,
    root: dir,
    close: async () => {
      await reg.app.close();
      if (!root) await rm(dir, { recursive: true, force: true });
    },
  };
}
