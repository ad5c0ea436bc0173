import type { CollectReport, Verdict } from './collector.js';

function where(v: Verdict): string {
  const g = v.garbage;
  if (g.kind === 'blob') return `blob ${g.digest}`;
  if (g.kind === 'tag') return `tag ${g.repository}:${g.tag}`;
  if (g.kind === 'manifest') return `manifest ${g.repository}@${g.digest}`;
  return `layer link ${g.repository}@${g.digest}`;
}

function what(v: Verdict, dryRun: boolean): string {
  const since = new Date(v.since).toISOString();
  switch (v.action) {
    case 'deleted':
      return dryRun ? 'would delete' : 'deleted';
    case 'recorded':
      return 'unused: recorded now, deleted by a pass after the grace';
    case 'waiting':
      return `unused since ${since}: waiting out the grace`;
    case 'kept':
      return 'kept: in use again since it was recorded';
  }
}

/** The report as lines for people: one per object with its verdict and reason, then the totals. */
export function describeReport(report: CollectReport, dryRun: boolean): string {
  // Retention and eviction first: one line per tag they govern, kept or not, with the rule that decided.
  const lines = (report.lifecycle ?? []).map((l) => {
    const what = l.tag === undefined ? `manifest ${l.repository}@${l.digest}` : `tag ${l.repository}:${l.tag}`;
    return `${what}: ${l.reason}`;
  });
  lines.push(...report.verdicts.map((v) => `${where(v)}: ${what(v, dryRun)} (${v.garbage.reason})`));
  if (report.blocked) lines.push(`nothing deleted: ${report.blocked}`);
  const gone = report.verdicts.filter((v) => v.action === 'deleted');
  const bytes = gone.reduce((n, v) => n + v.bytes, 0);
  const summary = dryRun
    ? `${gone.length} objects would be deleted, freeing ${bytes} bytes`
    : `${gone.length} objects deleted, ${bytes} bytes freed`;
  lines.push(`${summary} (${report.durationMs} ms)`);
  return `${lines.join('\n')}\n`;
}
