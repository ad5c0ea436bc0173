import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signImage } from '../../src/sign/index.js';
import { makeImage, makeMultiArch, pushAsReferrer, pushImage } from '../helpers/images.js';
import { makeArtifact } from '../helpers/oci-http.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startAuthRegistry, USERS, type AuthFixture } from '../auth/fixture.js';

/** What an image may carry to attack the page that shows it. */
export const HOSTILE_LABEL = '<img src=x onerror=alert(1)>';
export const HOSTILE_URL = 'javascript:alert(document.cookie)';

/** Who may do what in the UI tests: anonymous pulls public, prod and the cache; alice owns team-a; nobody sees secret. */
export const UI_ACCESS = {
  rules: [
    { repos: ['public/**', 'prod/**', 'docker.io/**'], who: ['*'], allow: ['pull'] },
    { repos: ['team-a/**'], who: ['alice'], allow: ['pull', 'push', 'delete'] },
  ],
};

/** A registry with local, cached, signed and hostile images behind access rules, and its upstream. */
export interface UiFixture {
  reg: TestRegistry;
  auth: AuthFixture;
  upstream: TestRegistry;
  close(): Promise<void>;
}

/**
 * Seeds a storage root through an open registry (pushes, a signature by the `hive` key, a pull through the
 * cache), then serves it with users, access rules and a `trust:` rule on `prod/**`.
 */
export async function startUiFixture(): Promise<UiFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ui-'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await writeFile(join(dir, 'hive.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  const upstream = await startRegistry();
  await pushImage(upstream.url, 'library/nginx', '1.27', await makeMultiArch('nginx'));
  const shared = {
    http: { host: 'http://registry.test' },
    upstreams: { 'docker.io': { url: upstream.url, ttl: '1h' } },
    flows: [{ name: 'official images', images: ['docker.io/library/*'] }],
    validation: { manifests: { indexes: { platforms: 'none' } } },
  };
  const seed = await startRegistry(shared);
  const multi = await makeMultiArch('team');
  await pushImage(seed.url, 'team-a/app', 'v1', multi);
  const hostile = await makeImage({ label: HOSTILE_LABEL });
  await pushImage(seed.url, 'team-a/app', 'v2', hostile);
  await pushImage(seed.url, 'team-a/app', 'old', await makeImage({ label: 'old' }));
  const sbom = makeArtifact({
    artifactType: 'application/spdx+json',
    payload: '{"spdxVersion":"SPDX-2.3"}',
    annotations: { 'org.example.link': HOSTILE_URL, 'org.example.note': HOSTILE_LABEL },
  });
  await pushAsReferrer(seed.url, 'team-a/app', sbom, hostile);
  await pushImage(seed.url, 'public/tool', 'latest', await makeImage({ label: 'tool' }));
  await pushImage(seed.url, 'secret/app', 'v1', await makeImage({ label: 'secret' }));
  const signed = await makeImage({ label: 'prod' });
  await pushImage(seed.url, 'prod/app', '1', signed);
  await pushImage(seed.url, 'prod/app', '2', await makeImage({ label: 'prod unsigned' }));
  await signImage(`docker://${seed.host}/prod/app:1`, privateKey, {
    transport: { tlsVerify: false },
    identity: 'registry.test/prod/app:1',
  });
  const pulled = await fetch(`${seed.url}/v2/docker.io/library/nginx/manifests/1.27`, {
    headers: { accept: 'application/vnd.oci.image.index.v1+json' },
  });
  if (pulled.status !== 200) throw new Error(`cache pull failed: ${pulled.status} ${await pulled.text()}`);
  await seed.app.close();
  const auth = await startAuthRegistry({
    access: UI_ACCESS,
    root: seed.root,
    config: {
      ...shared,
      trust: {
        keys: { hive: join(dir, 'hive.pub') },
        require: [{ name: 'prod signed', images: ['prod/**'], keys: ['hive'] }],
      },
    },
  });
  return {
    reg: auth.reg,
    auth,
    upstream,
    close: async () => {
      await auth.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { USERS };
