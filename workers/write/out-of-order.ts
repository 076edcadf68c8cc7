// An event that reaches its writer after a newer version of its object was committed: a version the
// history now misses. The router's reorder window makes this rare (route/reorder-window.ts); when it still
// happens (an API server that held a batch longer than the window, a window of 0), it is never skipped
// without a trace: the write fails as a dead letter whose error says so (the intermediate version's content
// is in its job, for an operator to read), it is counted (`…_events_out_of_order_total{cluster}`), and the
// target's status and the overview show the count. A replayed one (an operator retried it) is then what
// the writer says of any stale event: `unchanged: stale`.
//
// Only live audit events count: a reconcile write older than a live event, and a watch event whose change
// its audit event already committed, are stale by design.
import { WATCH_AUDIT_ID_PREFIX, type WriteJob, type WriteResult } from '../../core/contracts.js';
import { JobFailure, type JobHistory } from '../../queues/exclusive-batch-consumer.js';
import { OutOfOrderError } from '../../queues/out-of-order-error.js';

export { OUT_OF_ORDER_PREFIX, OutOfOrderError } from '../../queues/out-of-order-error.js';

/**
 * The failure to record instead of `result` when the job is a live audit event, met for the first time,
 * that its batch planned as stale; undefined for every other job.
 */
export function outOfOrderFailure(job: WriteJob, result: WriteResult | JobFailure | undefined, history: JobHistory | undefined, newest: string | undefined): JobFailure | undefined {
  if (result instanceof JobFailure || result?.outcome !== 'unchanged' || result.reason !== 'stale') return undefined;
  if (job.reconcile || job.auditID.startsWith(WATCH_AUDIT_ID_PREFIX) || (history?.attemptsMade ?? 0) > 0) return undefined;
  const committed = newest ? `resourceVersion ${newest}` : 'a newer resourceVersion';
  return new JobFailure(
    new OutOfOrderError(
      job.clusterId,
      `${job.operation} ${job.filePath} at resourceVersion ${job.resourceVersion} (audit ID ${job.auditID}) arrived after ${committed} of it was committed; ` +
        'this version is not in the history (its content is in this job). Retry it to acknowledge: it then changes nothing',
    ),
  );
}
