import type { FsckReport } from './fsck.js';
import type { RepairResult } from './fsck-repair.js';

/** The fsck report as lines: one per problem and per repair, then a summary. */
export function describeFsck(report: FsckReport, repairs?: RepairResult[]): string {
  const lines: string[] = [];
  for (const r of repairs ?? []) {
    const what = `${r.kind} ${r.digest ?? r.path}${r.repository ? ` in ${r.repository}` : ''}`;
    lines.push(`${r.repaired ? 'repaired' : 'not repaired'}: ${what}: ${r.detail}`);
  }
  for (const p of report.problems) {
    const needed = p.neededBy?.length
      ? ` (needed by ${p.neededBy.slice(0, 5).join(', ')}${p.neededBy.length > 5 ? ', …' : ''})`
      : '';
    lines.push(`${p.kind}: ${p.detail}${needed} [${p.path}]`);
  }
  const blobs = `${report.blobs} blobs (${report.hashed} hashed)`;
  const counts = `${report.repositories} repositories, ${report.tags} tags, ${report.manifests} manifests, ${blobs}`;
  const n = report.problems.length;
  lines.push(n === 0 ? `ok: ${counts}` : `${n} problem${n === 1 ? '' : 's'}: ${counts}`);
  return `${lines.join('\n')}\n`;
}
