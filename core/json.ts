// Reading parsed JSON (and other untrusted values) safely: the narrowings every module needs, in one place,
// so that "an object" means the same thing everywhere. Pure: no I/O.

/** A plain JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Any object whose properties may be read, arrays included (a thrown value, say); only null is not one. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The string itself when it is one and not empty; undefined otherwise. */
export function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The string itself when it is one; '' otherwise. */
export function stringOrEmpty(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** Sets an own property even for keys like `__proto__`, which plain assignment would not. */
export function putOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
