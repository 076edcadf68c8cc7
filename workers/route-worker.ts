// The worker of the ingest queue: normalizes each stored audit event and routes it, adding one write job
// per selected target to that target's partition queue.
//
// It runs with global concurrency 1 across all replicas: the order in which it takes events (the order
// the API server sent them) becomes the order of every partition queue. Normalizing and routing are pure
// and cheap, so one event at a time costs little next to the Git write.
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Valkey } from 'iovalkey';
import type { Logger } from 'pino';
import type { ServiceMetrics } from '../dashboard/metrics.js';
import { IngestJobSchema, type IngestJob, type IngestResult, type WriteJob } from '../queues/contracts.js';
import { WRITE_JOB_OPTIONS } from '../queues/job-options.js';
import { INGEST_QUEUE, writeJobId } from '../queues/names.js';
import { normalizeEvent } from './normalize/normalize-event.js';
import { matchTargets, type CompiledRoutes } from './route/compile-rules.js';
import { objectFilePath, UnsafePathError } from './route/path-layout.js';

export interface RouteWorkerOptions {
  connection: Valkey;
  prefix: string;
  routes: CompiledRoutes;
  /** Partition queue by queue name; every target's partition must be here. */
  writeQueues: Map<string, Queue<WriteJob>>;
  logger: Logger;
  metrics: ServiceMetrics;
}

export async function routeEvent(job: Job<IngestJob>, opts: RouteWorkerOptions): Promise<IngestResult> {
  const parsed = IngestJobSchema.safeParse(job.data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UnrecoverableError(`invalid ingest job payload: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  const normalized = normalizeEvent(parsed.data);
  if (normalized.kind === 'no-object-body') {
    opts.metrics.eventsWithoutBody.inc({ cluster: parsed.data.clusterId });
    return { outcome: 'no-object-body', reason: normalized.reason };
  }
  const event = normalized.event;
  const targets = matchTargets(opts.routes, event.identity, event.operation);
  if (targets.length === 0) {
    opts.metrics.eventsUnrouted.inc({ cluster: event.clusterId });
    return { outcome: 'unrouted' };
  }
  const writes: { target: string; queue: string; filePath: string }[] = [];
  for (const target of targets) {
    let filePath: string;
    try {
      filePath = objectFilePath(target.path, event.identity);
    } catch (err) {
      if (err instanceof UnsafePathError) throw new UnrecoverableError(`target ${target.key}: ${err.message}`);
      throw err;
    }
    const queue = opts.writeQueues.get(target.partition.queueName);
    if (!queue) throw new Error(`no write queue for partition ${target.partition.id} of target ${target.key}`);
    const write: WriteJob = {
      eventKey: event.eventKey,
      clusterId: event.clusterId,
      auditID: event.auditID,
      target: target.key,
      identity: event.identity,
      operation: event.operation,
      filePath,
      content: event.content,
      resourceVersion: event.resourceVersion,
      author: event.author,
      stageTimestamp: event.stageTimestamp,
    };
    // The job id makes a redelivered event (a retried ingest job) add nothing twice.
    await queue.add(event.operation, write, { ...WRITE_JOB_OPTIONS, jobId: writeJobId(event.eventKey, target.key) });
    opts.metrics.writesQueued.inc({ partition: target.partition.id });
    writes.push({ target: target.key, queue: target.partition.queueName, filePath });
  }
  return { outcome: 'routed', writes };
}

export async function startRouteWorker(opts: RouteWorkerOptions): Promise<Worker<IngestJob, IngestResult>> {
  const ingest = new Queue(INGEST_QUEUE, { connection: opts.connection, prefix: opts.prefix });
  await ingest.setGlobalConcurrency(1);
  await ingest.close();
  const worker = new Worker<IngestJob, IngestResult>(INGEST_QUEUE, (job) => routeEvent(job, opts), {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: 1,
  });
  worker.on('failed', (job, err) => opts.logger.error({ err, jobId: job?.id }, 'routing an event failed'));
  worker.on('error', (err) => opts.logger.error({ err }, 'ingest worker connection error'));
  return worker;
}
