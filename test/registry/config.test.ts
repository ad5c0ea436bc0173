import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseAddr, validateConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { keysAt } from '../../src/config/schema-walk.js';
import { closest, editDistance } from '../../src/config/suggest.js';
import { UNIMPLEMENTED_DISTRIBUTION_KEYS } from '../../src/config/unimplemented.js';
import { RegistryContext } from '../../src/registry/context.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { Metrics } from '../../src/registry/metrics.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';
import { run } from '../helpers/tools.js';

const DEBIAN_CONFIG = '/etc/docker/registry/config.yml';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'sluice-config-'));
}

async function writeConfig(dir: string, text: string): Promise<string> {
  const file = join(dir, 'config.yml');
  await writeFile(file, text);
  return file;
}

test("Debian's Distribution config.yml (paths adjusted) loads with its meaning", {
  skip: existsSync(DEBIAN_CONFIG) ? false : `${DEBIAN_CONFIG} not present (apt-get install docker-registry)`,
}, async () => {
  const dir = await scratch();
  try {
    const text = (await readFile(DEBIAN_CONFIG, 'utf8'))
      .replace('/var/lib/docker-registry', join(dir, 'data'))
      .replace('path: /etc/docker/registry', `path: ${join(dir, 'htpasswd')}`);
    const { config, warnings } = await loadConfig(await writeConfig(dir, text), {}, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.filesystem?.rootdirectory, join(dir, 'data'));
    assert.equal(config.storage.delete?.enabled, true);
    assert.equal(config.http.addr, ':5000');
    // Distribution's ":5000" means every interface; Sluice binds loopback unless told otherwise.
    assert.deepEqual(parseAddr(config.http.addr), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(config.http.headers, { 'X-Content-Type-Options': ['nosniff'] });
    assert.equal(config.auth?.htpasswd?.path, join(dir, 'htpasswd'));
    assert.equal(config.log.level, 'info');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Distribution keys: version, http.addr, rootdirectory, delete, validation.manifests.indexes, log.level', async () => {
  const dir = await scratch();
  try {
    const file = await writeConfig(
      dir,
      `version: 0.1
log:
  level: debug
http:
  addr: 127.0.0.1:5123
storage:
  filesystem:
    rootdirectory: ${dir}/store
  delete:
    enabled: true
validation:
  manifests:
    indexes:
      platforms: list
      platformlist:
        - architecture: amd64
          os: linux
        - architecture: arm64
          os: linux
          variant: v8
`,
    );
    const { config, warnings } = await loadConfig(file, {}, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.version, 0.1);
    assert.equal(config.log.level, 'debug');
    assert.equal(config.http.addr, '127.0.0.1:5123');
    assert.equal(config.storage.filesystem?.rootdirectory, `${dir}/store`);
    const ctx = new RegistryContext(new FilesystemDriver(dir), config, new Metrics(false));
    assert.equal(ctx.deleteEnabled, true);
    assert.deepEqual(ctx.indexPolicy, {
      mode: 'list',
      platforms: [
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
      ],
    });
    const defaults = await loadConfig(undefined, {}, {});
    const dctx = new RegistryContext(new FilesystemDriver(dir), defaults.config, new Metrics(false));
    assert.equal(dctx.deleteEnabled, false);
    assert.deepEqual(dctx.indexPolicy, { mode: 'all' });
    assert.equal(defaults.config.limits.manifestbytes, 4 * 1024 * 1024);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unknown keys stop the start: full path and the closest known key, every problem at once, one per line', async () => {
  const dir = await scratch();
  try {
    const text = [
      'auht:',
      '  htpasswd: {path: ./htpasswd}',
      'acess:',
      '  rules: []',
      'http:',
      '  addr: 127.0.0.1:5000',
      '  tsl: {certificate: c.pem, key: k.pem}',
      'storage:',
      '  delete:',
      '    enabld: true',
      'rootdirectory: /srv',
      'path: /srv/htpasswd',
      'notakey: 1',
      '',
    ].join('\n');
    await assert.rejects(loadConfig(await writeConfig(dir, text), {}, {}), (e: Error) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.deepEqual([...e.problems].sort(), [
        'unknown config key acess (did you mean access?)',
        'unknown config key auht (did you mean auth?)',
        'unknown config key http.tsl (did you mean http.tls?)',
        'unknown config key notakey',
        'unknown config key path',
        // storage.filesystem and storage.s3 both have a rootdirectory now: too many to guess.
        'unknown config key rootdirectory',
        'unknown config key storage.delete.enabld (did you mean storage.delete.enabled?)',
      ]);
      assert.equal(e.message.split('\n').length, 8, 'a header line and one line per problem');
      return true;
    });
    // In a list of objects too.
    assert.throws(
      () =>
        validateConfig({
          validation: {
            manifests: { indexes: { platforms: 'list', platformlist: [{ os: 'linux', architecure: 'arm64' }] } },
          },
        }),
      /unknown config key validation\.manifests\.indexes\.platformlist\.0\.architecure \(did you mean validation\.manifests\.indexes\.platformlist\.0\.architecture\?\)/,
    );
    // The CLI prints every problem and does not start.
    const r = await sluice([
      'serve',
      '--addr',
      '127.0.0.1:0',
      '--config',
      await writeConfig(dir, 'auht:\n  htpasswd: {path: x}\nstorage:\n  azure: {container: b}\n'),
    ]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'sluice: invalid config (2 problems):\n  unknown config key auht (did you mean auth?)\n  storage.azure is a Distribution key Sluice does not implement yet\n',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sluice serve reports the problems of every phase at once: schema, flows without upstreams, a bad regex, an access rule, the port', async (t) => {
  const dir = await scratch();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = await writeConfig(
    dir,
    [
      'log: {levle: info}',
      'http: {addr: "127.0.0.1:99999"}',
      'flows:',
      '  - images: ["docker.io/library/*"]',
      '    tags: {include: ["/v[/"]}',
      'access:',
      '  rules:',
      '    - {repos: ["**"], who: ["group:nosuch"], allow: [pull]}',
      '',
    ].join('\n'),
  );
  const r = await sluice(['serve', '--config', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^sluice: invalid config \(\d+ problems\):\n/);
  assert.match(r.stderr, /unknown config key log\.levle \(did you mean log\.level\?\)/);
  assert.match(r.stderr, /flows: set, but there is no upstreams: \(or proxy:\) section/);
  assert.match(r.stderr, /flows: flow rule 1: invalid tag regular expression \/v\[\//);
  assert.match(r.stderr, /access: rule 1: /);
  assert.match(r.stderr, /http\.addr "127\.0\.0\.1:99999" has an invalid port/);
});

test('Distribution keys Sluice does not implement are refused as such, including blocks that used to be taken and ignored', () => {
  const problems = (raw: Record<string, unknown>): string[] => {
    try {
      validateConfig(raw);
      return [];
    } catch (e) {
      return (e as ConfigError).problems;
    }
  };
  for (const key of UNIMPLEMENTED_DISTRIBUTION_KEYS.keys()) {
    const path = key.split('.');
    // A key the schema knows by now is implemented: adding it to the schema is all it takes.
    if (keysAt(configSchema, path.slice(0, -1)).includes(path[path.length - 1]!)) continue;
    const raw: Record<string, unknown> = {};
    let cur = raw;
    for (const k of path.slice(0, -1)) {
      const next: Record<string, unknown> = {};
      cur[k] = next;
      cur = next;
    }
    cur[path[path.length - 1]!] = {};
    // (A block inside http.tls also brings http.tls's own required keys into the report.)
    const found = problems(raw).filter((p) => p.startsWith(`${key} `) || p.includes(`key ${key}`));
    assert.equal(found.length, 1, `${key}: ${found.join('; ')}`);
    assert.match(
      found[0]!,
      new RegExp(`^${key.replace(/\./g, '\\.')} is a Distribution key Sluice does not implement yet`),
    );
  }
  // These were schema placeholders that took anything and did nothing.
  // storage.redirect is implemented for S3 only: asking the filesystem for redirects is refused plainly.
  assert.deepEqual(problems({ storage: { redirect: { disable: true } } }), []);
  assert.deepEqual(problems({ storage: { redirect: { disable: false } } }), [
    'storage.redirect.disable: redirects need storage.s3: the filesystem driver has no URL to redirect to (leave storage.redirect out, or set disable: true)',
  ]);
  assert.deepEqual(problems({ validation: { manifests: { urls: { allow: ['^https://'] } } } }), [
    'validation.manifests.urls is a Distribution key Sluice does not implement yet',
  ]);
  assert.deepEqual(problems({ storage: { cache: { blobdescriptor: 'redis' } } }), [
    'storage.cache.blobdescriptor: only inmemory is supported (a redis cache is not implemented)',
  ]);
  assert.deepEqual(problems({ health: { storagedriver: { enabled: true, intervl: '10s' } } }), [
    'unknown config key health.storagedriver.intervl (did you mean health.storagedriver.interval?)',
  ]);
  assert.deepEqual(problems({ log: { formatter: 'text' } }), [
    'log.formatter: Sluice writes JSON lines only: use json or leave it out',
  ]);
  assert.deepEqual(problems({ storage: { azure: { container: 'b' }, inmemory: {} }, redis: { addr: 'x:6379' } }), [
    'redis is a Distribution key Sluice does not implement yet',
    'storage.azure is a Distribution key Sluice does not implement yet',
    'storage.inmemory is a Distribution key Sluice does not implement yet (use storage.filesystem)',
  ]);
  // Distribution's notifications are read as they are; a typo in an endpoint stops the start.
  assert.deepEqual(
    problems({
      notifications: {
        endpoints: [{ name: 'ci', url: 'http://127.0.0.1:1/', timeout: '1s', threshold: 5, backoff: '1s' }],
      },
    }),
    [],
  );
  assert.equal(
    problems({ notifications: { endpoints: [{ name: 'ci', url: 'http://127.0.0.1:1/', thresold: 5 }] } }).length,
    1,
  );
  // What Debian's config.yml names is fine as it is.
  assert.deepEqual(
    problems({
      storage: { cache: { blobdescriptor: 'inmemory' } },
      health: { storagedriver: { enabled: true, interval: '10s', threshold: 3 } },
    }),
    [],
  );
});

test('edit distance counts a swap of neighbours as one slip', () => {
  assert.equal(editDistance('auht', 'auth'), 1);
  assert.equal(editDistance('acess', 'access'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(closest('stroage', ['storage', 'auth']), 'storage');
  assert.equal(closest('port', ['proxy', 'http', 'auth']), undefined);
});

test('invalid values fail with the key path in the message', async () => {
  const dir = await scratch();
  try {
    const cases: [string, string][] = [
      ['storage:\n  delete:\n    enabled: "sometimes"\n', 'storage.delete.enabled'],
      ['validation:\n  manifests:\n    indexes:\n      platforms: some\n', 'validation.manifests.indexes.platforms'],
      [
        'validation:\n  manifests:\n    indexes:\n      platforms: list\n      platformlist:\n        - os: linux\n',
        'validation.manifests.indexes.platformlist.0.architecture',
      ],
      ['log:\n  level: loud\n', 'log.level'],
      ['http:\n  addr: [1, 2]\n', 'http.addr'],
      ['limits:\n  manifestbytes: -1\n', 'limits.manifestbytes'],
      // Accepting Distribution's test-only auth and ignoring it would leave the registry open.
      ['auth:\n  silly:\n    realm: x\n    service: y\n', 'auth.silly'],
    ];
    for (const [text, key] of cases) {
      const file = await writeConfig(dir, text);
      await assert.rejects(loadConfig(file, {}, {}), (e: Error) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(e.message.includes(key), `"${e.message}" should name ${key}`);
        return true;
      });
    }
    await assert.rejects(loadConfig(await writeConfig(dir, 'http: [unclosed\n'), {}, {}), /not valid YAML/);
    await assert.rejects(loadConfig(join(dir, 'absent.yml'), {}, {}), /cannot read config/);
    // The CLI prints one line and exits non-zero.
    const r = await sluice(['serve', '--config', await writeConfig(dir, 'log:\n  level: loud\n')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sluice: invalid config: log\.level: .*\n$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('environment overrides (SLUICE_ and REGISTRY_), and --addr/--root over both', async () => {
  const dir = await scratch();
  try {
    const file = await writeConfig(
      dir,
      `http:\n  addr: 127.0.0.1:5000\nstorage:\n  filesystem:\n    rootdirectory: /from/file\n  delete:\n    enabled: false\nlog:\n  level: info\n`,
    );
    const env = {
      SLUICE_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_LOG_LEVEL: 'warn',
      REGISTRY_HTTP_ADDR: '127.0.0.1:6000',
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/from/env',
    };
    const a = await loadConfig(file, {}, env);
    assert.equal(a.config.storage.delete?.enabled, true);
    assert.equal(a.config.log.level, 'warn');
    assert.equal(a.config.http.addr, '127.0.0.1:6000');
    assert.equal(a.config.storage.filesystem?.rootdirectory, '/from/env');
    const b = await loadConfig(file, { addr: '127.0.0.1:7000', root: '/from/flag' }, env);
    assert.equal(b.config.http.addr, '127.0.0.1:7000');
    assert.equal(b.config.storage.filesystem?.rootdirectory, '/from/flag');
    await assert.rejects(loadConfig(file, {}, { SLUICE_STORAGE_DELETE_ENABLED: 'maybe' }), /storage\.delete\.enabled/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a bad value from an environment variable names the variable; so does a variable naming an unknown key', async () => {
  const problems = async (env: NodeJS.ProcessEnv): Promise<string[]> =>
    loadConfig(undefined, {}, env).then(
      () => [],
      (e: ConfigError) => [...e.problems].sort(),
    );
  assert.deepEqual(await problems({ SLUICE_STORAGE_DELETE_ENABLED: 'maybe' }), [
    'storage.delete.enabled (from SLUICE_STORAGE_DELETE_ENABLED): expected boolean, received string',
  ]);
  assert.deepEqual(await problems({ REGISTRY_LOG_LEVEL: 'loud' }), [
    "log.level (from REGISTRY_LOG_LEVEL): invalid enum value. Expected 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent', received 'loud'",
  ]);
  assert.deepEqual(
    await problems({
      SLUICE_STORAGE_DELETE_ENABLD: 'true',
      REGISTRY_AUHT_HTPASSWD_PATH: '/etc/htpasswd',
      REGISTRY_STORAGE_AZURE_CONTAINER: 'b',
      SLUICE_PORT: '5000',
    }),
    [
      'storage.azure (from REGISTRY_STORAGE_AZURE_CONTAINER) is a Distribution key Sluice does not implement yet',
      'unknown config key auht (from REGISTRY_AUHT_HTPASSWD_PATH, did you mean auth?)',
      'unknown config key port (from SLUICE_PORT)',
      'unknown config key storage.delete.enabld (from SLUICE_STORAGE_DELETE_ENABLD, did you mean storage.delete.enabled?)',
    ],
  );
  // Kubernetes sets these for a service named "registry": they are not config, as Distribution also decides.
  const k8s = {
    REGISTRY_PORT: 'tcp://10.0.0.1:5000',
    REGISTRY_PORT_5000_TCP_ADDR: '10.0.0.1',
    REGISTRY_SERVICE_HOST: '10.0.0.1',
    REGISTRY_SERVICE_PORT: '5000',
  };
  const quiet = await loadConfig(undefined, {}, k8s);
  assert.equal(quiet.config.http.addr, '127.0.0.1:5000');
  assert.deepEqual(
    quiet.warnings.sort(),
    Object.keys(k8s)
      .sort()
      .map((k) => `environment variable ${k} names no config key; ignored`),
  );
  // Values are typed as their key expects: a realm of digits stays a string, a list is YAML.
  const typed = await loadConfig(
    undefined,
    {},
    {
      SLUICE_AUTH_HTPASSWD_REALM: '2024',
      SLUICE_AUTH_HTPASSWD_PATH: '/h',
      REGISTRY_HTTP_TLS_CERTIFICATE: '/c.pem',
      REGISTRY_HTTP_TLS_KEY: '/k.pem',
      REGISTRY_HTTP_TLS_CLIENTCAS: '[/a.pem, /b.pem]',
    },
  );
  assert.equal(typed.config.auth?.htpasswd?.realm, '2024');
  assert.deepEqual(typed.config.http.tls?.clientcas, ['/a.pem', '/b.pem']);
});

test('relative paths in a config file resolve against its folder; variables, flags and defaults against the current directory', async () => {
  const dir = await scratch();
  try {
    const file = await writeConfig(
      dir,
      [
        'storage:',
        '  filesystem: {rootdirectory: data}',
        'auth:',
        '  htpasswd: {path: ./htpasswd}',
        '  robots: {path: secrets/robots.json}',
        '  issuer: {key: ../keys/token.pem}',
        '  token: {realm: https://auth.example/token, service: s, issuer: i, rootcertbundle: certs/bundle.pem, jwks: jwks.json}',
        'audit: {path: audit.log}',
        'http:',
        '  tls: {certificate: tls/server.crt, key: /etc/ssl/server.key, clientcas: [tls/ca.crt, /etc/ssl/ca.crt]}',
        '',
      ].join('\n'),
    );
    const { config } = await loadConfig(file, {}, {});
    assert.equal(config.storage.filesystem?.rootdirectory, join(dir, 'data'));
    assert.equal(config.auth?.htpasswd?.path, join(dir, 'htpasswd'));
    assert.equal(config.auth?.robots?.path, join(dir, 'secrets/robots.json'));
    assert.equal(config.auth?.issuer.key, join(dir, '../keys/token.pem'));
    assert.equal(config.auth?.token?.rootcertbundle, join(dir, 'certs/bundle.pem'));
    assert.equal(config.auth?.token?.jwks, join(dir, 'jwks.json'));
    assert.equal(config.audit?.path, join(dir, 'audit.log'));
    assert.deepEqual(config.http.tls, {
      certificate: join(dir, 'tls/server.crt'),
      key: '/etc/ssl/server.key',
      clientcas: [join(dir, 'tls/ca.crt'), '/etc/ssl/ca.crt'],
    });
    // A flag or a variable is typed where the command runs, so it stays relative to the current directory.
    const b = await loadConfig(file, { root: 'flagroot' }, { SLUICE_AUTH_ROBOTS_PATH: 'env-robots.json' });
    assert.equal(b.config.storage.filesystem?.rootdirectory, 'flagroot');
    assert.equal(b.config.auth?.robots?.path, 'env-robots.json');
    assert.equal(b.config.auth?.htpasswd?.path, join(dir, 'htpasswd'));
    // Not files: stdout for the audit log, a JWKS URL; and defaults, which the file did not write.
    const c = await loadConfig(
      await writeConfig(
        dir,
        'audit: {path: "-"}\nauth:\n  token: {realm: r, service: s, issuer: i, jwks: "https://idp.example/jwks"}\nstorage:\n  filesystem: {}\n',
      ),
      {},
      {},
    );
    assert.equal(c.config.audit?.path, '-');
    assert.equal(c.config.auth?.token?.jwks, 'https://idp.example/jwks');
    assert.equal(c.config.storage.filesystem?.rootdirectory, './data');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sluice robot create -c /abs/dir/config.yml run from another directory writes the robot file next to the config', async () => {
  const dir = await scratch();
  const elsewhere = await scratch();
  try {
    const cfg = await writeConfig(dir, 'auth:\n  robots: {path: robots.json}\n');
    const r = await run(process.execPath, [SLUICE_BIN, 'robot', 'create', 'builder', '-c', cfg], { cwd: elsewhere });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'robots.json')), 'the robot file is next to the config');
    assert.ok(!existsSync(join(elsewhere, 'robots.json')), 'and not where the command ran');
    const list = await run(process.execPath, [SLUICE_BIN, 'robot', 'list', '-c', cfg], { cwd: '/' });
    assert.match(list.stdout, /^builder\tcreated /);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(elsewhere, { recursive: true, force: true });
  }
});

test('durations in Distribution syntax', async () => {
  const { parseDuration, isDuration } = await import('../../src/config/duration.js');
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('168h'), 168 * 3_600_000);
  assert.equal(parseDuration('1h30m'), 90 * 60_000);
  assert.equal(parseDuration('10'), 10_000);
  for (const bad of ['', 'soon', '10x', 'h', '-5s']) assert.equal(isDuration(bad), false, bad);
  const dir = await scratch();
  try {
    const file = await writeConfig(
      dir,
      'storage:\n  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 168h\n      interval: 24h\n      dryrun: false\nhttp:\n  draintimeout: 60s\n',
    );
    const { config, warnings } = await loadConfig(file, {}, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.maintenance?.uploadpurging?.age, '168h');
    await assert.rejects(
      loadConfig(await writeConfig(dir, 'http:\n  draintimeout: soon\n'), {}, {}),
      /http\.draintimeout/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
