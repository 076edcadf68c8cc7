// What a schema of resource-schemas.ts finds wrong with one configuration object, in the project's form: a
// field path (`spec.rules[0].resources[1]`) and a message per problem. zod reports the unknown fields of one
// object as one `unrecognized_keys` issue; here each becomes its own problem, naming the known field it is
// closest to (`did you mean allowedNamespaces?`), or, when none is close (a field of a newer version), the
// fields this version knows at that level. And the cluster's way of reading the same strict schemas:
// parseKnownFields, which ignores unknown fields instead of refusing the object.
import { z } from 'zod';

export interface FieldProblem {
  /** `spec.audit.tokenSecretRef.name`, `spec.rules[1].apiGroups`; '' for the object itself. */
  field: string;
  message: string;
}

export function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

/** The problems of a failed parse of `schema`, one per unknown field and one per other issue, in zod's order. */
export function schemaProblems(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') {
      problems.push({ field: issuePath(issue.path), message: issue.message });
      continue;
    }
    const known = Object.keys(objectAt(schema, issue.path)?.shape ?? {});
    for (const key of issue.keys) {
      const meant = closestField(key, known);
      const hint = meant !== undefined ? ` (did you mean ${meant}?)` : known.length > 0 ? ` (known here: ${known.join(', ')})` : '';
      problems.push({ field: issuePath([...issue.path, key]), message: `unknown field${hint}` });
    }
  }
  return problems;
}

/**
 * Parses an object read from a cluster. Its API server already pruned every field its CRD does not know, so
 * an unknown field here comes from a CRD newer than this service (CRDs applied before the rollout, a helm
 * rollback, which never downgrades CRDs): it is left out, as a controller decoding into its own types leaves
 * it, rather than taking the object out of the configuration. Every other problem fails the parse as usual.
 * `value` is not changed.
 */
export function parseKnownFields<S extends z.ZodType>(schema: S, value: unknown): z.ZodSafeParseResult<z.output<S>> {
  const first = schema.safeParse(value);
  if (first.success) return first;
  const unknown = first.error.issues.filter((issue) => issue.code === 'unrecognized_keys');
  if (unknown.length === 0) return first;
  const known = structuredClone(value);
  for (const issue of unknown) {
    let holder: unknown = known;
    for (const step of issue.path) holder = (holder as Record<PropertyKey, unknown> | undefined)?.[step];
    if (typeof holder === 'object' && holder !== null) for (const key of issue.keys) delete (holder as Record<string, unknown>)[key];
  }
  return schema.safeParse(known);
}

/** The object schema an issue path leads to through objects, lists, maps and optional or default wrappers. */
function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  let node: unknown = schema;
  for (let i = 0; ; i++) {
    node = unwrap(node);
    if (i === path.length) return node instanceof z.ZodObject ? node : undefined;
    const step = path[i];
    if (node instanceof z.ZodObject && typeof step === 'string') node = node.shape[step];
    else if (node instanceof z.ZodArray && typeof step === 'number') node = node.element;
    else if (node instanceof z.ZodRecord) node = node.valueType;
    else return undefined;
  }
}

function unwrap(node: unknown): unknown {
  for (;;) {
    if (node instanceof z.ZodOptional || node instanceof z.ZodNullable || node instanceof z.ZodDefault) node = node.unwrap();
    else if (node instanceof z.ZodPipe) node = node.in;
    else return node;
  }
}

/**
 * The known field a typo most likely meant: the fewest edits (a swap of two neighbours counts as one), ignoring
 * case, within 1 edit for names up to 4 letters, 2 up to 10, 3 beyond; else a field the name is the start of,
 * or starts with (`reconcileInterval` for `reconcileIntervalSeconds`). Undefined when none is that close.
 */
export function closestField(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  const limit = k.length <= 4 ? 1 : k.length <= 10 ? 2 : 3;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const field of known) {
    const f = field.toLowerCase();
    const distance = editDistance(k, f);
    // A name cut short (or run on) by a word: closer than any typo past one edit.
    const score = distance <= limit ? distance : Math.min(k.length, f.length) >= 5 && (f.startsWith(k) || k.startsWith(f)) ? 1.5 : Infinity;
    if (score < bestScore) {
      best = field;
      bestScore = score;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = d;
    }
  }
  return at(a.length, b.length);
}
