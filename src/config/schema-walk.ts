import { z, type ZodTypeAny } from 'zod';

/** Strips the wrappers (optional, default, refine, ...) that do not change which keys a schema has. */
export function unwrap(schema: ZodTypeAny): ZodTypeAny {
  let s = schema;
  for (let i = 0; i < 32; i++) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodDefault) s = s.removeDefault();
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else if (s instanceof z.ZodCatch) s = s.removeCatch();
    else if (s instanceof z.ZodReadonly || s instanceof z.ZodBranded) s = s.unwrap();
    else if (s instanceof z.ZodPipeline) s = s._def.in as ZodTypeAny;
    else if (s instanceof z.ZodLazy) s = s.schema as ZodTypeAny;
    else return s;
  }
  return s;
}

function step(s: ZodTypeAny, key: string | number): ZodTypeAny | undefined {
  if (s instanceof z.ZodObject) return (s.shape as Record<string, ZodTypeAny>)[String(key)];
  if (s instanceof z.ZodArray)
    return typeof key === 'number' || /^\d+$/.test(key) ? (s.element as ZodTypeAny) : undefined;
  if (s instanceof z.ZodRecord) return s.valueSchema as ZodTypeAny;
  if (s instanceof z.ZodUnion || s instanceof z.ZodDiscriminatedUnion) {
    for (const option of s.options as ZodTypeAny[]) {
      const next = step(unwrap(option), key);
      if (next) return next;
    }
  }
  return undefined;
}

/** The schema that validates the value at `path` (wrappers removed), or undefined when no key there is known. */
export function schemaAt(root: ZodTypeAny, path: readonly (string | number)[]): ZodTypeAny | undefined {
  let s: ZodTypeAny | undefined = unwrap(root);
  for (const key of path) {
    s = step(s, key);
    if (!s) return undefined;
    s = unwrap(s);
  }
  return s;
}

/** The keys an object at `path` may have (none when the value there is not an object with fixed keys). */
export function keysAt(root: ZodTypeAny, path: readonly (string | number)[]): string[] {
  const s = schemaAt(root, path);
  if (s instanceof z.ZodObject) return Object.keys(s.shape as object);
  if (s instanceof z.ZodUnion) return (s.options as ZodTypeAny[]).flatMap((o) => keysAt(o, []));
  return [];
}

/** Every fixed key path in the schema (through arrays, not through free-form records), for cross-section suggestions. */
export function allKeyPaths(root: ZodTypeAny, prefix: string[] = [], depth = 0): string[][] {
  if (depth > 8) return [];
  const out: string[][] = [];
  const s = schemaAt(root, []);
  const inner = s instanceof z.ZodArray ? unwrap(s.element as ZodTypeAny) : s;
  if (!(inner instanceof z.ZodObject)) return out;
  for (const [k, v] of Object.entries(inner.shape as Record<string, ZodTypeAny>)) {
    out.push([...prefix, k]);
    out.push(...allKeyPaths(v, [...prefix, k], depth + 1));
  }
  return out;
}
