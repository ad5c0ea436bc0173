import { makeImage, pushImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startAuthRegistry, USERS, type AuthFixture } from '../auth/fixture.js';

/** carol administers (group ops); alice owns team-a; bob and anonymous pull public and mirrored images only. */
export const ADMIN_ACCESS = {
  groups: { ops: ['carol'] },
  rules: [
    { name: 'team-a', repos: ['team-a/**'], who: ['alice', 'group:ops'], allow: ['pull', 'push', 'delete'] },
    { name: 'public', repos: ['public/**', 'docker.io/**'], who: ['*'], allow: ['pull'] },
  ],
};

/**
 * A registry with a mirror job (one tag copied, one refused by its flow), an audit log file, a retention rule
 * and `ui.admins`.
 */
export interface AdminFixture {
  reg: TestRegistry;
  auth: AuthFixture;
  upstream: TestRegistry;
  /** The audit log file. */
  auditPath: string;
  close(): Promise<void>;
}

/** Basic credentials of a test user. */
export function basic(user: keyof typeof USERS): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${USERS[user]}`).toString('base64')}` };
}

/**
 * Seeds local repositories through an open registry, then serves the root with users, rules, an audit file
 * and a mirror job `app` (every hour, so it runs once at start) that copies `library/app:1.0` and is refused
 * `1.1-rc1` by the flow rule; waits for that first run. Leaves a denied pull by bob in the audit log.
 */
export async function startAdminFixture(): Promise<AdminFixture> {
  const upstream = await startRegistry();
  await pushImage(upstream.url, 'library/app', '1.0', await makeImage({ label: 'app 1.0' }));
  await pushImage(upstream.url, 'library/app', '1.1-rc1', await makeImage({ label: 'app rc' }));
  const seed = await startRegistry();
  // Retention keeps the latest tag of team-a: v0, pushed first, is what the next collection deletes.
  await pushImage(seed.url, 'team-a/app', 'v0', await makeImage({ label: 'team old' }));
  await new Promise((res) => setTimeout(res, 50));
  await pushImage(seed.url, 'team-a/app', 'v1', await makeImage({ label: 'team' }));
  await pushImage(seed.url, 'public/tool', 'latest', await makeImage({ label: 'tool' }));
  await seed.app.close();
  const auth = await startAuthRegistry({
    access: ADMIN_ACCESS,
    root: seed.root,
    audit: { path: '' },
    config: {
      upstreams: { 'docker.io': { url: upstream.url } },
      flows: [{ name: 'no release candidates', images: ['docker.io/library/*'], tags: { exclude: ['*-rc*'] } }],
      mirrors: [{ name: 'app', images: ['docker.io/library/app'], every: '1h' }],
      retention: [{ name: 'latest of team-a', images: ['team-a/**'], latest: 1 }],
      ui: { admins: ['group:ops'] },
    },
  });
  const reg = auth.reg;
  const close = async () => {
    await auth.close();
    await upstream.close();
  };
  try {
    // The job's first run starts with the server; its state is written when it ends.
    for (let i = 0; ; i++) {
      const r = await fetch(`${reg.url}/api/v1/jobs`, { headers: basic('carol') });
      const body = (await r.json()) as { items?: { lastRun?: unknown; running: boolean }[] };
      if (r.status === 200 && body.items?.[0]?.lastRun && !body.items[0].running) break;
      if (i > 300) throw new Error(`the mirror job did not run: ${r.status} ${JSON.stringify(body)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const denied = await fetch(`${reg.url}/v2/team-a/app/manifests/v1`, { headers: basic('bob') });
    if (denied.status !== 403) throw new Error(`bob's pull of team-a/app answered ${denied.status}`);
    await denied.arrayBuffer();
  } catch (e) {
    await close();
    throw e;
  }
  return { reg, auth, upstream, auditPath: `${auth.dir}/audit.jsonl`, close };
}
