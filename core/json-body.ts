// Reading the body of an API server answer: JSON that may not be JSON, and a Status message that may be long.

/** How much of a Status message goes into an error (some servers return whole pages). */
export const MAX_MESSAGE = 300;

/** The parsed body, or undefined when it is not JSON (a proxy's HTML error page, say). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A client-node error as one readable text: its message, and the API server's answer (the Status body)
 * when the message does not already hold it.
 */
export function apiErrorText(err: unknown): string {
  const e = err as { message?: unknown; body?: unknown };
  const body = typeof e?.body === 'string' ? e.body : e?.body !== undefined ? JSON.stringify(e.body) : '';
  const message = err instanceof Error ? err.message : String(err);
  return body && !message.includes(body) ? `${message}: ${body}` : message;
}
