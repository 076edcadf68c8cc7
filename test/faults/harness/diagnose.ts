// Where did a lost event go? Looks its jobs up in Valkey (the ingest job `<cluster>_<auditID>`, the write
// job with that auditID) so a scenario's failure names the stage and the outcome, not just a count.
import type { Job, Queue } from 'bullmq';
import { eventJobId } from '../../../queues/names.js';

export async function classifyLost(ingest: Queue, write: Queue, cluster: string, auditIDs: string[]): Promise<Map<string, string[]>> {
  const writeJobs = new Map<string, Job>();
  const all = await write.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized'], 0, -1);
  for (const j of all) {
    const id = (j.data as { auditID?: string } | undefined)?.auditID;
    if (id) writeJobs.set(id, j);
  }
  const classes = new Map<string, string[]>();
  for (const id of auditIDs) {
    let kind: string;
    const w = writeJobs.get(id);
    if (w) {
      const state = await w.getState();
      const rv = w.returnvalue as { outcome?: string; reason?: string } | null;
      kind =
        state === 'completed'
          ? `write job completed as ${rv?.outcome ?? '?'}${rv?.reason ? ` (${rv.reason})` : ''}`
          : state === 'failed'
            ? `write job failed after ${w.attemptsMade} attempts: ${w.failedReason.slice(0, 120)}`
            : `write job ${state}`;
    } else {
      const i = await ingest.getJob(eventJobId(cluster, id));
      kind = i ? `no write job; ingest job ${await i.getState()}${i.returnvalue ? ` → ${JSON.stringify(i.returnvalue).slice(0, 120)}` : ''}` : 'neither an ingest nor a write job in Valkey';
    }
    classes.set(kind, [...(classes.get(kind) ?? []), id]);
  }
  return classes;
}
