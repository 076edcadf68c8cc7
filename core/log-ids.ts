// Ids in log lines that tie a webhook request to its jobs and its commits: the request id (the caller's
// X-Request-Id when it is a plain token, else a new one), and the audit IDs (each ingest job's id is
// `<cluster>_<auditID>`, each write job's starts with it, each commit carries it as an Audit-ID trailer).
// Lists are capped so that one log line stays small whatever the batch.
import { randomUUID } from 'node:crypto';

const PLAIN_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_LISTED = 50;

/** The caller's request id when it is safe to log and echo, else a fresh one. */
export function requestIdOf(header: string | undefined): string {
  return header && PLAIN_ID.test(header) ? header : randomUUID();
}

/** At most 50 ids, then how many more: `["a", "b", …, "+120 more"]`. */
export function listedIds(ids: readonly string[]): string[] {
  return ids.length <= MAX_LISTED ? [...ids] : [...ids.slice(0, MAX_LISTED), `+${ids.length - MAX_LISTED} more`];
}
