import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSignatures, policyGate, type GateVerdict, type SignatureGate } from '../../src/passthrough/signatures.js';
import { parsePolicy, resolvePolicy } from '../../src/sign/index.js';
import type { HostReference } from '../../src/passthrough/decide.js';
import { parseTaggedName } from '../../src/transport/docker-names.js';
import type { ImageSource } from '../../src/transport/transport.js';

// How the verdicts of several digests and several gates combine; the gates here answer from a table,
// the real ones (config trust, containers-policy.json) are exercised with dockerd in trust.test.ts.
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function hostRef(text: string, digests: string[]): HostReference {
  return { text, reference: parseTaggedName(text), imageId: `sha256:${'f'.repeat(64)}`, digests };
}

function gate(
  name: string,
  answers: Record<string, GateVerdict | Error>,
  applies = true,
): SignatureGate & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    applies: () => applies,
    async check(_source, _ref, digest) {
      asked.push(digest);
      const a = answers[digest];
      if (a instanceof Error) throw a;
      return a ?? { allowed: false, reason: `${name}: nothing for ${digest}` };
    },
  };
}

const opened: string[] = [];
const open = (registry: string, repository: string, digest: string): ImageSource => {
  opened.push(`${registry}/${repository}@${digest}`);
  return {
    description: 'x',
    getManifest: () => Promise.reject(new Error('unused')),
    getBlob: () => Promise.reject(new Error('unused')),
    close: async () => undefined,
  };
};

test('no gate applies: nothing is checked and nothing opened', async () => {
  opened.length = 0;
  assert.equal(await checkSignatures(hostRef('busybox:1', [D1]), [gate('a', {}, false)], open), undefined);
  assert.deepEqual(opened, []);
});

test('a name without a registry digest is refused without asking any registry', async () => {
  opened.length = 0;
  const g = gate('a', {});
  const o = await checkSignatures(hostRef('busybox:1', []), [g], open);
  assert.equal(o?.allowed, false);
  assert.match(o!.reason, /no registry digest for docker\.io\/library\/busybox/);
  assert.deepEqual(g.asked, []);
  assert.deepEqual(opened, []);
});

test('one digest satisfying a gate is enough; the registry each digest names is opened', async () => {
  opened.length = 0;
  const g = gate('a', { [D2]: { allowed: true, reason: 'a: signed' } });
  const o = await checkSignatures(hostRef('ghcr.io/acme/app:1', [D1, D2]), [g], open);
  assert.equal(o?.allowed, true);
  assert.equal(o!.reason, 'signed: a: signed');
  assert.deepEqual(
    o!.checked.map((c) => [c.digest, c.allowed]),
    [
      [D1, false],
      [D2, true],
    ],
  );
  assert.deepEqual(opened, [`ghcr.io/acme/app@${D1}`, `ghcr.io/acme/app@${D2}`]);
});

test('every gate must be satisfied; a refusal names each digest tried, and a registry error is a refusal with its message', async () => {
  const ok = gate('config', {
    [D1]: { allowed: true, reason: 'config: signed' },
    [D2]: { allowed: true, reason: 'config: signed' },
  });
  const no = gate('policy', { [D1]: new Error('cannot reach registry ghcr.io') });
  const o = await checkSignatures(hostRef('ghcr.io/acme/app:1', [D1, D2]), [ok, no], open);
  assert.equal(o?.allowed, false);
  assert.equal(
    o!.reason,
    `not signed as required: ${D1}: signatures of ghcr.io/acme/app@${D1} could not be read from ghcr.io: cannot reach registry ghcr.io | ${D2}: policy: nothing for ${D2}`,
  );
});

test('a containers-policy.json reject scope refuses by itself, with or without a registry digest, and opens no registry image', async () => {
  const policy = resolvePolicy(
    parsePolicy(
      '{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"ghcr.io/acme":[{"type":"reject"}]}}}',
    ),
    () => {
      throw new Error('no keys here');
    },
  );
  const g = policyGate(policy, 'policy.json');
  opened.length = 0;
  for (const digests of [[], [D1]]) {
    const o = await checkSignatures(hostRef('ghcr.io/acme/app:1', digests), [g], open);
    assert.equal(o?.allowed, false);
    assert.equal(
      o!.reason,
      'refused: policy.json: refused by requirement "reject" (policy scope docker:ghcr.io/acme): refused by a reject requirement',
    );
  }
  assert.deepEqual(opened, []);
  // insecureAcceptAnything (the default scope here) needs no look at all.
  assert.equal(await checkSignatures(hostRef('busybox:1', [D1]), [g], open), undefined);
});
