import { test } from 'node:test';
import fc from 'fast-check';
import { compilePatterns } from '../../src/policy/patterns.js';
import { ANONYMOUS } from '../../src/policy/types.js';

// Fixed seed and bounded runs: the same cases every run, in well under a second.
const RUNS = { seed: 20261207, numRuns: 300 };
const nobody = ANONYMOUS;

const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789');
const lowerRun = fc.string({ unit: alnum, minLength: 1, maxLength: 5 });
const component = fc
  .tuple(lowerRun, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-'), lowerRun), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, r]) => s + r).join(''));
/** A component that no one takes for a registry host (no dot, not localhost). */
const plain = component.filter((c) => !c.includes('.') && c !== 'localhost' && c !== 'library');

function matches(pattern: string, repository: string): boolean {
  return compilePatterns([pattern], {})[0]!.matches({ repository }, nobody);
}

test('a Docker Hub official image pattern in any spelling matches the image, and nothing next to it', () => {
  fc.assert(
    fc.property(plain, plain, (name, other) => {
      const spellings = [name, `library/${name}`, `docker.io/library/${name}`];
      for (const pattern of spellings) {
        // Flows judge the full name; a local `nginx` and `library/nginx` count as one another, but are not Docker Hub's.
        if (!matches(pattern, `docker.io/library/${name}`)) return false;
        if (pattern !== spellings[2] && !(matches(pattern, name) && matches(pattern, `library/${name}`))) return false;
        if (other !== name && matches(pattern, `docker.io/library/${other}`)) return false;
        if (matches(pattern, `docker.io/library/${name}/x`) || matches(pattern, `ghcr.io/library/${name}`))
          return false;
      }
      return true;
    }),
    RUNS,
  );
});

test('a literal pattern of a local name matches exactly that name', () => {
  fc.assert(
    fc.property(fc.array(plain, { minLength: 2, maxLength: 4 }), plain, (parts, extra) => {
      const name = parts.join('/');
      return (
        matches(name, name) &&
        !matches(name, `${name}/${extra}`) &&
        !matches(name, `${extra}/${name}`) &&
        !matches(name, parts.slice(0, -1).join('/'))
      );
    }),
    RUNS,
  );
});

test('`*` stays inside one segment and `**` crosses segments', () => {
  fc.assert(
    fc.property(plain, fc.array(plain, { minLength: 1, maxLength: 4 }), (prefix, rest) => {
      const target = [prefix, ...rest].join('/');
      return (
        matches(`${prefix}/*`, target) === (rest.length === 1) &&
        matches(`${prefix}/**`, target) &&
        !matches(`${prefix}-x/**`, target)
      );
    }),
    RUNS,
  );
});

test('a tag glob `v*` matches the name with any tag starting with v, and no tag-less request', () => {
  fc.assert(
    fc.property(
      fc.array(plain, { minLength: 2, maxLength: 3 }),
      fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}$/),
      (parts, tag) => {
        const p = compilePatterns([`${parts[0]}/**:v*`], {})[0]!;
        const repository = parts.join('/');
        return p.matches({ repository, tag }, nobody) === tag.startsWith('v') && !p.matches({ repository }, nobody);
      },
    ),
    RUNS,
  );
});
