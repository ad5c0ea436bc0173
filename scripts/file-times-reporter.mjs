// A node:test reporter that writes one line per test file with the time its tests took, slowest first, when the
// run ends: where `npm test`'s time goes (issue 22 asks for it per file). Node 20 reports each file's top-level
// tests at nesting 0 with the file's path; they run one after another, so their durations add up to the file's.
export default async function* fileTimes(source) {
  const files = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0) {
      const name = event.data.file ?? event.data.name;
      const f = files.get(name) ?? { ms: 0, tests: 0, failed: 0 };
      f.ms += event.data.details?.duration_ms ?? 0;
      f.tests += 1;
      if (event.type === 'test:fail') f.failed += 1;
      files.set(name, f);
    }
  }
  const rows = [...files].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((s, [, f]) => s + f.ms, 0);
  const cwd = `${process.cwd()}/`;
  yield `# per-file test time (sum ${(total / 1000).toFixed(0)} s over ${rows.length} files, slowest first)\n`;
  for (const [name, f] of rows) {
    const failed = f.failed ? `, ${f.failed} failed` : '';
    yield `${(f.ms / 1000).toFixed(1).padStart(7)} s  ${name.replace(cwd, '')}  (${f.tests} tests${failed})\n`;
  }
}
