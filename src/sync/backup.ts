// Backup tags of a moved tag: named from the job's `backup` template, and recognised by it so prune keeps them.

/** The backup tag for `tag` on `now` under a template of `{tag}` and `{date}` (YYYYMMDD), cut to a tag's 128. */
export function backupTag(template: string, tag: string, now: Date): string {
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  return template
    .replace(/\{tag\}/g, tag)
    .replace(/\{date\}/g, date)
    .slice(0, 128);
}

/** A test for the tags a template makes, whatever the tag and date in them. */
export function backupPattern(template: string): RegExp {
  const parts = template
    .split(/(\{tag\}|\{date\})/)
    .map((p) => (p === '{tag}' ? '.+' : p === '{date}' ? '\\d{8}' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('')}$`);
}
