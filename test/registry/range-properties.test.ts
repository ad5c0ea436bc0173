import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OciError } from '../../src/oci/errors.js';
import { parseRange } from '../../src/registry/blob-routes.js';
import { parseContentRange } from '../../src/registry/upload-routes.js';

// Fixed seed and bounded runs: the same cases every run, in well under a second.
const RUNS = { seed: 20261207, numRuns: 1000 };

/** A number as a client might write it: small, at the edges of a size, huge, or past 2^53. */
const digits = fc.oneof(
  fc.nat(2000).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  fc.constantFrom('', '0', '00', '9007199254740991', '9007199254740992', '9007199254740993', '1e3', '-1', ' 1'),
);
const rangeHeader = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('bytes=', 'BYTES=', 'bytes= ', 'items=', ''),
      digits,
      fc.constantFrom('-', '--', ','),
      digits,
    )
    .map((p) => p.join('')),
  fc.string({ maxLength: 30 }),
);
const size = fc.oneof(fc.nat(2000), fc.constant(0), fc.nat(Number.MAX_SAFE_INTEGER));

test('parseRange never yields a range that starts after it ends or reaches past the size', () => {
  fc.assert(
    fc.property(rangeHeader, size, (header, n) => {
      let r: { start: number; end: number } | null;
      try {
        r = parseRange(header, n);
      } catch (e) {
        return e instanceof OciError && e.code === 'RANGE_INVALID';
      }
      return (
        r === null ||
        (Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end) && 0 <= r.start && r.start <= r.end && r.end < n)
      );
    }),
    RUNS,
  );
});

test('parseRange serves exactly the bytes a well-formed first-last range asks for within the size', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1 << 30 }), fc.nat(), fc.nat(), (n, a, b) => {
      const first = a % n;
      const last = first + (b % (n - first));
      assert.deepEqual(parseRange(`bytes=${first}-${last}`, n), { start: first, end: last });
      assert.deepEqual(parseRange(`bytes=-${n - first}`, n), { start: first, end: n - 1 });
    }),
    RUNS,
  );
});

const contentRange = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('', 'bytes=', 'bytes ', 'chunks '),
      digits,
      fc.constantFrom('-', '--'),
      digits,
      fc.constantFrom('', '/*', '/100', '/'),
    )
    .map((p) => p.join('')),
  fc.string({ maxLength: 30 }),
);

test('parseContentRange yields safe integers, start no later than end, matching the length when one is given', () => {
  fc.assert(
    fc.property(contentRange, fc.option(fc.nat(1 << 20), { nil: undefined }), (header, length) => {
      let r: { start: number; end: number } | undefined;
      try {
        r = parseContentRange(header, length);
      } catch (e) {
        return e instanceof OciError && e.code === 'RANGE_INVALID';
      }
      return (
        r !== undefined &&
        Number.isSafeInteger(r.start) &&
        Number.isSafeInteger(r.end) &&
        r.start <= r.end &&
        (length === undefined || r.end - r.start + 1 === length)
      );
    }),
    RUNS,
  );
});

test('parseContentRange refuses offsets past 2^53, where numbers stop being exact (found by the property above)', () => {
  assert.throws(
    () => parseContentRange('9007199254740993-9007199254740993', 1),
    (e: unknown) => e instanceof OciError && e.code === 'RANGE_INVALID',
  );
  assert.throws(
    () => parseContentRange('0-100000000000000000000', undefined),
    (e: unknown) => e instanceof OciError && e.code === 'RANGE_INVALID',
  );
});
