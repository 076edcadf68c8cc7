// Reading the body of an API server answer: JSON that may not be JSON, and a Status message that may be long.

/** How much of a Status message goes into an error (some servers return whole pages). */
export const MAX_MESSAGE = 300;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The parsed body, or undefined when it is not JSON (a proxy's HTML error page, say). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
