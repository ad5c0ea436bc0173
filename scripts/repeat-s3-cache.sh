#!/usr/bin/env bash
# Runs the S3 and cache test files N times in a row (default 20), to find flaky tests: each round runs
# them on the filesystem, then the cache's files again on S3 (as npm test's S3 pass does). Build first
# (npm run build). Prints one line per round; logs go to $OUT (default /tmp/sluice-repeat).
set -u
cd "$(dirname "$0")/.."
N=${1:-20}
OUT=${OUT:-/tmp/sluice-repeat}
mkdir -p "$OUT"
S3_FILES=$(ls dist/test/storage/s3*.test.js)
CACHE_FILES="dist/test/proxy/cache.test.js dist/test/proxy/cache-upstream.test.js dist/test/proxy/cache-auth.test.js
  dist/test/proxy/blob-fill.test.js dist/test/proxy/blob-fill-release.test.js dist/test/proxy/hostile.test.js
  dist/test/proxy/load.test.js"
run() { node --import ./dist/test/helpers/fail-on-unhandled.js --test --test-concurrency=2 "$@"; }
failed=0
for i in $(seq 1 "$N"); do
  start=$(date +%s)
  run $S3_FILES $CACHE_FILES dist/test/proxy/hostile-names.test.js dist/test/proxy/clients.test.js > "$OUT/round$i-fs.log" 2>&1; fs=$?
  SLUICE_TEST_STORAGE=s3 run $CACHE_FILES > "$OUT/round$i-s3.log" 2>&1; s3=$?
  echo "round $i: filesystem exit $fs, S3 exit $s3, $(( $(date +%s) - start )) s"
  [ $fs -ne 0 ] || [ $s3 -ne 0 ] && failed=$((failed + 1))
done
echo "$failed of $N rounds failed"
[ $failed -eq 0 ]
