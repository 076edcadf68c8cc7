// Replays dead letters: jobs in a queue's failed set go back to be processed again (BullMQ's retry, the
// same as Bull Board's button). For a write, the writer's stale-event guard still applies: a replayed
// event older than what the file already holds changes nothing.
import type { Queue } from 'bullmq';

export interface ReplayResult {
  queue: string;
  replayed: string[];
  /** Ids asked for that are not in the failed set, with what they are instead. */
  skipped: { id: string; state: string }[];
}

/** Replays the given failed jobs, or every failed job of the queue when `ids` is empty. */
export async function replayFailed(queue: Queue, ids: string[] = []): Promise<ReplayResult> {
  const result: ReplayResult = { queue: queue.name, replayed: [], skipped: [] };
  const found = ids.length > 0 ? await Promise.all(ids.map((id) => queue.getJob(id))) : await queue.getFailed(0, -1);
  ids.forEach((id, i) => {
    if (!found[i]) result.skipped.push({ id, state: 'not found' });
  });
  // Back in the order they were queued (the failed set lists the latest failure first): a partition's
  // writes are replayed in the order of their changes, not in the order they happened to fail.
  const jobs = found.filter((j) => j !== undefined).sort((a, b) => a.timestamp - b.timestamp || (a.finishedOn ?? 0) - (b.finishedOn ?? 0));
  for (const job of jobs) {
    const state = await job.getState();
    if (state !== 'failed') {
      result.skipped.push({ id: job.id!, state });
      continue;
    }
    await job.retry('failed');
    result.replayed.push(job.id!);
  }
  return result;
}
