// Bounds on the work one event may cost. An object becomes a job in Valkey, a canonical YAML file and a
// Git blob; each step walks it, and the YAML step costs hundreds of bytes of memory per value. Without a
// bound, one accepted event (a ConfigMap holding an array of five million zeros) blocks the router's
// event loop and takes gigabytes of heap, on every restart, since it is taken from the queue again. So the
// webhook measures each kept object here and refuses one over a bound with 400 naming the bound; the
// router measures again before normalizing (a job in Valkey is input, and may predate these bounds).
//
// Kubernetes itself bounds what is real: etcd refuses values over 1.5 MiB by default, so no stored object is
// larger, and the deepest real objects (CRDs with nested schemas) stay far below the depth bound.

/** The bounds, from the environment (config/env.ts). */
export interface ObjectLimits {
  /** The object as JSON (UTF-8), after managedFields are dropped. @defaultValue 3145728 (3 MiB) */
  maxBytes: number;
  /** Nesting of maps and arrays; the object itself is level 1. @defaultValue 100 */
  maxDepth: number;
  /** Map keys plus array elements, summed over the whole object. @defaultValue 200000 */
  maxValues: number;
}

export const DEFAULT_OBJECT_LIMITS: ObjectLimits = { maxBytes: 3 * 1024 * 1024, maxDepth: 100, maxValues: 200_000 };

/** Which bound an object broke: also the reason the webhook counts and answers. */
export type ObjectLimitReason = 'object-too-large' | 'object-too-deep' | 'object-too-many-values';

export type ObjectMeasure = { ok: true; bytes: number } | { ok: false; reason: ObjectLimitReason; error: string };

const isContainer = (v: unknown): v is object => typeof v === 'object' && v !== null;

/** `['data', 'k', 3]` → `data.k[3]`; the root is `(root)`. */
function pathText(path: readonly (string | number)[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out === '' ? key : `.${key}`;
  return out === '' ? '(root)' : out;
}

/**
 * Measures `object` against `limits` without recursion (a hostile depth must not overflow the stack here)
 * and stops at the first bound broken, naming it and where. Depth and values are checked while walking,
 * before anything is serialized; the size is the JSON the job will be stored as.
 */
export function measureObject(object: unknown, limits: ObjectLimits): ObjectMeasure {
  let values = 0;
  // Each entry: a container and the path to it (kept only for the error message).
  const stack: { value: object; depth: number; path: (string | number)[] }[] = [];
  if (isContainer(object)) stack.push({ value: object, depth: 1, path: [] });
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!;
    if (depth > limits.maxDepth) {
      return { ok: false, reason: 'object-too-deep', error: `the object is nested deeper than ${limits.maxDepth} levels (at ${pathText(path)}); the limit is EVENT_MAX_DEPTH` };
    }
    // Counted before anything is copied: an array of millions is refused without walking it.
    const keys = Array.isArray(value) ? undefined : Object.keys(value);
    const count = keys ? keys.length : (value as unknown[]).length;
    values += count;
    if (values > limits.maxValues) {
      const where = keys ? `a map of ${count} keys at ${pathText(path)}` : `an array of ${count} elements at ${pathText(path)}`;
      return {
        ok: false,
        reason: 'object-too-many-values',
        error: `the object has more than ${limits.maxValues} map keys and array elements in all (${where}); the limit is EVENT_MAX_VALUES`,
      };
    }
    if (keys) {
      const map = value as Record<string, unknown>;
      for (const key of keys) if (isContainer(map[key])) stack.push({ value: map[key] as object, depth: depth + 1, path: [...path, key] });
    } else {
      (value as unknown[]).forEach((child, i) => isContainer(child) && stack.push({ value: child, depth: depth + 1, path: [...path, i] }));
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(object) ?? '', 'utf8');
  if (bytes > limits.maxBytes) {
    return { ok: false, reason: 'object-too-large', error: `the object is ${bytes} bytes as JSON, over the limit of ${limits.maxBytes} (EVENT_MAX_OBJECT_BYTES)` };
  }
  return { ok: true, bytes };
}
