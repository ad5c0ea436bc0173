import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isDigest, parseDigest } from '../../src/oci/digest.js';
import { isRefName, isRepositoryName, isTag, MAX_NAME_LENGTH } from '../../src/oci/name.js';
import { formatReference, parseReference, type Reference } from '../../src/oci/reference.js';

// Fixed seed and bounded runs: the same cases every run, in well under a second each.
const RUNS = { seed: 20261207, numRuns: 400 };

const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789');
const lowerRun = fc.string({ unit: alnum, minLength: 1, maxLength: 6 });
const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
/** One path component of the distribution spec's name grammar. */
const component = fc
  .tuple(lowerRun, fc.array(fc.tuple(separator, lowerRun), { maxLength: 3 }))
  .map(([head, rest]) => head + rest.map(([s, r]) => s + r).join(''));
/** A repository name the spec accepts (cut to the length limit at a component boundary). */
const repositoryName = fc
  .array(component, { minLength: 1, maxLength: 5 })
  .map((parts) => parts.join('/'))
  .filter((n) => n.length <= MAX_NAME_LENGTH);
const tag = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/);
const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);
/** Text that is almost a name: the kinds of damage a hostile name carries. */
const damage = fc.constantFrom(
  '..',
  '/',
  '//',
  '/..',
  '../',
  'A',
  'É',
  'é',
  '\u0000',
  '\n',
  '\t',
  ' ',
  ':',
  '@',
  '\\',
  '%2e',
  '\u202e',
  '🐳',
  '*',
);

test('every repository name the grammar builds is accepted', () => {
  fc.assert(
    fc.property(repositoryName, (n) => isRepositoryName(n)),
    RUNS,
  );
});

test('a repository name with traversal, slashes, upper case, unicode or control characters spliced in is refused', () => {
  fc.assert(
    fc.property(repositoryName, damage, fc.nat(), (n, bad, at) => {
      const i = at % (n.length + 1);
      const spliced = n.slice(0, i) + bad + n.slice(i);
      // Only a single `/` between two components is still a name; every other splice must be refused.
      fc.pre(
        !(
          bad === '/' &&
          i > 0 &&
          i < n.length &&
          n[i - 1] !== '/' &&
          n[i] !== '/' &&
          /[a-z0-9]/.test(n[i - 1]!) &&
          /[a-z0-9]/.test(n[i]!)
        ),
      );
      return !isRepositoryName(spliced);
    }),
    RUNS,
  );
});

test('a repository name longer than 255 characters, an empty one or one with an empty segment is refused', () => {
  fc.assert(
    fc.property(
      repositoryName,
      (n) =>
        !isRepositoryName(`${n}/${'a'.repeat(MAX_NAME_LENGTH)}`) &&
        !isRepositoryName(`${n}//a`) &&
        !isRepositoryName(`/${n}`) &&
        !isRepositoryName(`${n}/`),
    ),
    RUNS,
  );
  assert.equal(isRepositoryName(''), false);
});

test('every tag the grammar builds is accepted, and so are its characters up to 128', () => {
  fc.assert(
    fc.property(tag, (t) => isTag(t)),
    RUNS,
  );
});

test('a tag with traversal, a slash, unicode or control characters, a leading dot or dash, or past 128 characters is refused', () => {
  fc.assert(
    fc.property(
      tag,
      fc.constantFrom('/', '..', '\u0000', '\n', ' ', ':', '@', 'é', '🐳', '\\', '*'),
      fc.nat(),
      (t, bad, at) => {
        const i = at % (t.length + 1);
        // `..` inside a tag is two dots, which the grammar allows after the first character.
        fc.pre(!(bad === '..' && i > 0));
        return !isTag(t.slice(0, i) + bad + t.slice(i));
      },
    ),
    RUNS,
  );
  fc.assert(
    fc.property(tag, fc.constantFrom('.', '-'), (t, lead) => !isTag(lead + t)),
    RUNS,
  );
  fc.assert(
    fc.property(tag, (t) => !isTag(t + 'a'.repeat(129 - t.length + 1)) && !isTag('')),
    RUNS,
  );
});

test('every digest round-trips through parseDigest, and a damaged one is refused', () => {
  fc.assert(
    fc.property(digest, (d) => {
      const p = parseDigest(d);
      return isDigest(d) && p.digest === d && `${p.algorithm}:${p.hex}` === d;
    }),
    RUNS,
  );
  fc.assert(
    fc.property(digest, damage, fc.nat(), (d, bad, at) => {
      const i = at % (d.length + 1);
      const spliced = d.slice(0, i) + bad + d.slice(i);
      return !isDigest(spliced) && !isDigest(d.toUpperCase()) && !isDigest(d.slice(0, -1)) && !isDigest(`${d}0`);
    }),
    RUNS,
  );
});

const host = fc.oneof(
  fc.constantFrom('docker.io', 'ghcr.io', 'localhost', '127.0.0.1:5000', 'registry.example.com:443', '[::1]:5000'),
  fc.tuple(lowerRun, lowerRun).map(([a, b]) => `${a}.${b}`),
);

test('a reference built from a host, a name, a tag and a digest round-trips through parse and format', () => {
  fc.assert(
    fc.property(
      host,
      repositoryName,
      fc.option(tag, { nil: undefined }),
      fc.option(digest, { nil: undefined }),
      (registry, repository, t, d) => {
        const ref: Reference = {
          registry,
          repository: registry === 'docker.io' && !repository.includes('/') ? `library/${repository}` : repository,
        };
        if (t !== undefined) ref.tag = t;
        if (d !== undefined) ref.digest = d as Reference['digest'];
        const text = formatReference(ref);
        assert.deepEqual(parseReference(text), ref);
        assert.equal(formatReference(parseReference(text)), text);
      },
    ),
    RUNS,
  );
});

const referenceish = fc.string({
  unit: fc.constantFrom(
    'a',
    'b',
    'A',
    '0',
    '.',
    '..',
    '/',
    ':',
    '@',
    '-',
    '_',
    '__',
    'sha256:',
    'é',
    '\u0000',
    'localhost',
  ),
  maxLength: 40,
});

/** A first segment that may or may not be a host: dots, colons, dashes, brackets in any order. */
const hostish = fc.string({
  unit: fc.constantFrom('a', '0', 'A', '.', '..', ':', '-', '[', ']', '_'),
  minLength: 1,
  maxLength: 12,
});
const nameAfterHost = fc.tuple(hostish, repositoryName).map(([h, n]) => `${h}/${n}`);

test('whatever text parseReference accepts yields a valid host, repository name, tag and digest', () => {
  fc.assert(
    fc.property(fc.oneof(referenceish, nameAfterHost, fc.string({ maxLength: 40 })), (text) => {
      let ref: Reference;
      try {
        ref = parseReference(text);
      } catch {
        return true;
      }
      return (
        isRepositoryName(ref.repository) &&
        (ref.tag === undefined || isTag(ref.tag)) &&
        (ref.digest === undefined || isDigest(ref.digest)) &&
        !ref.registry.includes('/') &&
        !ref.registry.split(/[.:]/).includes('') &&
        !/^[-.]|[-.]$|\.-|-\./.test(ref.registry.replace(/:\d+$/, '')) &&
        ref.registry.length > 0
      );
    }),
    RUNS,
  );
});

test('parseReference refuses a registry host that is not a host, and a name past 255 characters (found by the properties above)', () => {
  for (const bad of [
    './a',
    '../team/app',
    '..:5000/app',
    'a..b/app',
    '.x/app',
    `ghcr.io/${'a'.repeat(256)}`,
    `${'a'.repeat(200)}/${'b'.repeat(60)}`,
  ]) {
    assert.throws(() => parseReference(bad), `${bad.slice(0, 40)} is refused`);
  }
});

test('every ref.name an image layout may hold is accepted; traversal and control characters are not', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        tag.filter((t) => /^[A-Za-z0-9]/.test(t) && /[A-Za-z0-9]$/.test(t)),
        repositoryName.map((n) => `example.com/${n}:v1`),
      ),
      (n) => isRefName(n),
    ),
    RUNS,
  );
  for (const bad of ['../../x', 'a/../b', '/abs', 'a//b', 'a\nb', '', 'x'.repeat(600), '.hidden', 'a/'])
    assert.equal(isRefName(bad), false, JSON.stringify(bad.slice(0, 20)));
});
