// `npm run bench [-- --json] [--ingest N] [--events N] [--naive N] [--batch N] [--concurrency N] [--objects N] [--reconcile N]`
//
// Runs the real service in-process against a local Valkey (an embedded server on a free port with a temp
// data dir, or VALKEY_URL with a fresh random key prefix) and local bare Git repositories, and measures:
//   1. webhook ingest: audit EventLists POSTed over HTTP, until every response is 2xx;
//   2. end to end on one partition: events POSTed until the remote branch holds one commit per event;
//   3. a naive baseline: simple-git add + commit + push per event, no queue;
//   4. the speedup of 2 over 3;
//   5. reconcile: a target over 50 resource types with N objects in 20 namespaces (API-server stand-in),
//      first run into an empty repository and an unchanged re-run, seconds and peak RSS (bench/reconcile.ts).
// Figures only; nothing is asserted about time. What was measured is checked (every event accepted and
// stored, exactly one pushed commit per event with its Audit-ID), and a failed check exits non-zero.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { simpleGit } from 'simple-git';
import { stringify } from 'yaml';
import { demoConfigYaml } from '../config/demo-config.js';
import { parseConfig } from '../config/load-config.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { openConnection } from '../queues/connection.js';
import { startEmbeddedValkey, type EmbeddedValkey } from '../queues/embedded-valkey.js';
import { startService, type RunningService } from '../service.js';
import { AuditEventGenerator, type EventList } from './audit-events.js';
import { BENCH_COMMITTER, benchServiceOptions, type BenchEnv } from './bench-service.js';
import { auditIdTrailers, commitCount, initBare, treePaths } from './git.js';
import { benchReconcile } from './reconcile.js';

class BenchCheckError extends Error {
  override name = 'BenchCheckError';
}

const CLUSTER = 'bench';
const TOKEN = randomBytes(16).toString('hex');

interface Options {
  ingest: number;
  events: number;
  naive: number;
  batch: number;
  concurrency: number;
  objects: number;
  reconcile: number;
  json: boolean;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      ingest: { type: 'string', default: '20000' },
      events: { type: 'string', default: '2000' },
      naive: { type: 'string', default: '100' },
      batch: { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '4' },
      objects: { type: 'string', default: '36' },
      reconcile: { type: 'string', default: '10000' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench -- [--json] [--ingest N=20000] [--events N=2000] [--naive N=100] [--batch N=500] [--concurrency N=4] [--objects N=36] [--reconcile N=10000 (0: skip)]\n',
    );
    process.exit(0);
  }
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new BenchCheckError(`--${name} must be an integer >= ${min}, got "${text}"`);
    return n;
  };
  return {
    ingest: int('ingest', values.ingest, 1),
    events: int('events', values.events, 1),
    naive: int('naive', values.naive, 1),
    batch: int('batch', values.batch, 1),
    concurrency: int('concurrency', values.concurrency, 1),
    objects: int('objects', values.objects, 1),
    reconcile: Number(values.reconcile),
    json: values.json,
  };
}

const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const seconds = (fromMs: number) => (performance.now() - fromMs) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The demo-style configuration: one cluster, one repository, one target, one rule selecting everything. */
function benchConfig(repoPath: string): ResolvedConfig {
  return parseConfig(demoConfigYaml(repoPath, { cluster: CLUSTER, token: TOKEN }));
}

/** Stops the service and says how long that took (a stop that hangs would show here). */
async function stopService(service: RunningService, phase: string): Promise<void> {
  const t0 = performance.now();
  await service.stop();
  progress(`${phase}: service stopped in ${seconds(t0).toFixed(2)} s`);
}

async function startBenchService(env: BenchEnv, phase: string, repoPath: string): Promise<RunningService> {
  return startService({ ...benchServiceOptions(env, phase), config: benchConfig(repoPath), dashboardReadOnly: true });
}

interface PostTotals {
  requests: number;
  received: number;
  accepted: number;
}

/** POSTs every body with `concurrency` requests in flight; any non-2xx answer is an error. */
async function postAll(url: string, bodies: string[], concurrency: number): Promise<PostTotals> {
  const totals: PostTotals = { requests: 0, received: 0, accepted: 0 };
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const res = await fetch(`${url}/audit-webhook/${CLUSTER}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body,
      });
      const text = await res.text();
      if (res.status < 200 || res.status >= 300) throw new BenchCheckError(`webhook answered ${res.status}: ${text.slice(0, 500)}`);
      const answer = JSON.parse(text) as { received: number; accepted: number };
      totals.requests++;
      totals.received += answer.received;
      totals.accepted += answer.accepted;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, worker));
  return totals;
}

const serialize = (lists: EventList[]) => lists.map((l) => JSON.stringify(l));

function checkAccepted(what: string, totals: PostTotals, expected: number): void {
  if (totals.received !== expected || totals.accepted !== expected) {
    throw new BenchCheckError(`${what}: sent ${expected} events, the webhook received ${totals.received} and accepted ${totals.accepted}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// 1. webhook ingest

interface IngestFigures {
  events: number;
  requests: number;
  megabytes: number;
  seconds: number;
  eventsPerSec: number;
}

async function benchIngest(env: BenchEnv, opts: Options): Promise<IngestFigures> {
  const repo = join(env.root, 'ingest-remote.git');
  await initBare(repo);
  const service = await startBenchService(env, 'ingest', repo);
  try {
    const bodies = serialize(new AuditEventGenerator(opts.objects).lists(opts.ingest, opts.batch));
    const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);
    progress(`ingest: POSTing ${opts.ingest} events in ${bodies.length} EventLists (${(bytes / 1e6).toFixed(1)} MB), ${opts.concurrency} in flight`);
    const t0 = performance.now();
    const totals = await postAll(service.url, bodies, opts.concurrency);
    const elapsed = seconds(t0);
    checkAccepted('ingest', totals, opts.ingest);
    // A 2xx promises the events are stored: every one must be a job of the ingest queue now.
    const counts = await service.ingestQueue.getJobCounts();
    const stored = Object.values(counts).reduce((a, b) => a + b, 0);
    if (stored !== opts.ingest) {
      throw new BenchCheckError(`ingest: ${opts.ingest} events accepted but the ingest queue holds ${stored} jobs (${JSON.stringify(counts)})`);
    }
    return { events: opts.ingest, requests: totals.requests, megabytes: bytes / 1e6, seconds: elapsed, eventsPerSec: opts.ingest / elapsed };
  } finally {
    await stopService(service, 'ingest');
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. end to end on one partition

interface EndToEndFigures {
  events: number;
  commits: number;
  pushes: number;
  postSeconds: number;
  seconds: number;
  eventsPerSec: number;
}

async function histogramCount(service: RunningService): Promise<number> {
  const { values } = await service.metrics.pushDuration.get();
  return values.filter((v) => v.metricName?.endsWith('_count')).reduce((n, v) => n + v.value, 0);
}

async function benchEndToEnd(env: BenchEnv, opts: Options): Promise<EndToEndFigures> {
  const repo = join(env.root, 'e2e-remote.git');
  await initBare(repo);
  const service = await startBenchService(env, 'e2e', repo);
  try {
    const writeQueue = [...service.writeQueues.values()][0];
    if (!writeQueue || service.writeQueues.size !== 1) throw new BenchCheckError(`expected one partition, got ${service.writeQueues.size}`);
    const gen = new AuditEventGenerator(opts.objects);
    const lists = gen.lists(opts.events, opts.batch);
    const sentIds = lists.flatMap((l) => l.items.map((e) => e.auditID));
    const bodies = serialize(lists);
    progress(`end-to-end: ${opts.events} events (each an effective change of one of ${gen.objectsTouched} objects) → one partition`);

    // One request at a time, as one API server's audit backend delivers a stream: with lists in flight
    // together their order in the queue is a race, and a list overtaken by a later one would carry
    // older resourceVersions of the same objects, which the writer rightly skips as stale.
    const t0 = performance.now();
    const totals = await postAll(service.url, bodies, 1);
    const postSeconds = seconds(t0);
    checkAccepted('end-to-end', totals, opts.events);

    // Wait until the writer completed every write job (it completes them only after the push).
    let lastProgress = performance.now();
    let lastDone = -1;
    for (;;) {
      const [ingest, write] = await Promise.all([service.ingestQueue.getJobCounts('failed'), writeQueue.getJobCounts('completed', 'failed')]);
      if ((ingest.failed ?? 0) > 0) {
        const [job] = await service.ingestQueue.getFailed(0, 0);
        throw new BenchCheckError(`end-to-end: ${ingest.failed} ingest jobs failed, e.g. ${job?.id}: ${job?.failedReason}`);
      }
      if ((write.failed ?? 0) > 0) {
        const [job] = await writeQueue.getFailed(0, 0);
        throw new BenchCheckError(`end-to-end: ${write.failed} write jobs failed, e.g. ${job?.id}: ${job?.failedReason}`);
      }
      const done = write.completed ?? 0;
      if (done >= opts.events) break;
      if (done !== lastDone) {
        lastDone = done;
        lastProgress = performance.now();
      } else if (performance.now() - lastProgress > 60_000) {
        throw new BenchCheckError(`end-to-end: no progress for 60 s; ${done} of ${opts.events} write jobs completed, remote has ${await commitCount(repo)} commits`);
      }
      await sleep(20);
    }
    const elapsed = seconds(t0);

    // What was measured must be what happened: exactly one pushed commit per event, each event's own.
    const commits = await commitCount(repo);
    if (commits !== opts.events) {
      throw new BenchCheckError(`end-to-end: sent ${opts.events} events (each an effective change) but the remote branch has ${commits} commits`);
    }
    const trailers = await auditIdTrailers(repo);
    const missing = sentIds.filter((id) => !trailers.includes(id));
    if (trailers.length !== opts.events || missing.length > 0 || new Set(trailers).size !== trailers.length) {
      throw new BenchCheckError(`end-to-end: Audit-ID trailers do not match the events sent (${trailers.length} trailers, ${missing.length} events missing)`);
    }
    if (trailers.some((id, i) => id !== sentIds[i])) {
      throw new BenchCheckError('end-to-end: the commits are not in the order the events were sent');
    }
    const files = await treePaths(repo);
    if (files.length !== gen.objectsTouched) {
      throw new BenchCheckError(`end-to-end: the remote tree has ${files.length} files, expected one per object (${gen.objectsTouched})`);
    }
    const pushes = await histogramCount(service);
    return { events: opts.events, commits, pushes, postSeconds, seconds: elapsed, eventsPerSec: opts.events / elapsed };
  } finally {
    await stopService(service, 'end-to-end');
  }
}

// ---------------------------------------------------------------------------------------------------
// 3. naive baseline: add + commit + push per event through simple-git, no queue

interface NaiveFigures {
  events: number;
  commits: number;
  seconds: number;
  eventsPerSec: number;
}

async function benchNaive(env: BenchEnv, opts: Options): Promise<NaiveFigures> {
  const remote = join(env.root, 'naive-remote.git');
  const work = join(env.root, 'naive-work');
  await initBare(remote);
  await simpleGit().clone(remote, work);
  const g = simpleGit(work);
  await g.addConfig('user.name', BENCH_COMMITTER.name);
  await g.addConfig('user.email', BENCH_COMMITTER.email);
  await g.addConfig('commit.gpgsign', 'false');
  await g.raw(['symbolic-ref', 'HEAD', 'refs/heads/main']);
  const gen = new AuditEventGenerator(opts.objects);
  const events = Array.from({ length: opts.naive }, () => gen.next());
  progress(`naive: ${opts.naive} events, one simple-git add + commit + push each`);

  const t0 = performance.now();
  for (const ev of events) {
    const { namespace, resource, name } = ev.objectRef;
    const rel = `clusters/${CLUSTER}/${namespace}/${resource}/${name}.yaml`;
    const { status: _status, ...object } = ev.responseObject;
    await mkdir(dirname(join(work, rel)), { recursive: true });
    await writeFile(join(work, rel), stringify(object));
    await g.add(rel);
    await g.commit(`${ev.verb.toUpperCase()} ${resource} ${namespace}/${name}\n\nAudit-ID: ${ev.auditID}\n`, undefined, {
      '--author': `${ev.user.username} <${ev.user.username.replace(/[^A-Za-z0-9._+-]/g, '-')}@${CLUSTER}.cluster.local>`,
    });
    await g.push('origin', 'main');
  }
  const elapsed = seconds(t0);
  const commits = await commitCount(remote);
  if (commits !== opts.naive) throw new BenchCheckError(`naive: made ${opts.naive} commits but the remote branch has ${commits}`);
  return { events: opts.naive, commits, seconds: elapsed, eventsPerSec: opts.naive / elapsed };
}

// ---------------------------------------------------------------------------------------------------

function table(rows: [string, string, string][]): string {
  const head: [string, string, string] = ['figure', 'value', 'detail'];
  const all = [head, ...rows];
  const w = [0, 1, 2].map((i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: [string, string, string]) => `${r[0].padEnd(w[0]!)}  ${r[1].padStart(w[1]!)}  ${r[2]}`.trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function deleteKeys(url: string, pattern: string): Promise<void> {
  const client = openConnection(url);
  try {
    let cursor = '0';
    do {
      const [nextCursor, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = nextCursor;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

async function main(): Promise<void> {
  const opts = readOptions();
  const root = await mkdtemp(join(tmpdir(), 'gitops-reverser-bench-'));
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
  let embedded: EmbeddedValkey | undefined;
  const prefixBase = `bench-${randomBytes(4).toString('hex')}`;
  let valkeyUrl = process.env.VALKEY_URL;
  try {
    if (!valkeyUrl) {
      embedded = await startEmbeddedValkey({ dataDir: join(root, 'valkey') });
      valkeyUrl = embedded.url;
      progress(`started ${embedded.binary} on ${embedded.url} (data in ${root})`);
    } else {
      progress(`using VALKEY_URL with key prefix ${prefixBase}-*`);
    }
    const env: BenchEnv = { root, valkeyUrl, prefixBase, logger };

    const ingest = await benchIngest(env, opts);
    progress(`ingest: ${fmt(ingest.eventsPerSec)} events/s`);
    const e2e = await benchEndToEnd(env, opts);
    progress(`end-to-end: ${fmt(e2e.eventsPerSec)} events/s`);
    const naive = await benchNaive(env, opts);
    progress(`naive: ${fmt(naive.eventsPerSec, 1)} events/s`);
    const speedup = e2e.eventsPerSec / naive.eventsPerSec;
    const reconcile =
      opts.reconcile > 0
        ? await benchReconcile(env, { objects: opts.reconcile, types: 50, namespaces: 20 }, progress, (ok, what) => {
            if (!ok) throw new BenchCheckError(`reconcile: ${what}`);
          })
        : undefined;

    const figures = {
      ingestEventsPerSec: round(ingest.eventsPerSec, 1),
      endToEndEventsPerSec: round(e2e.eventsPerSec, 1),
      naiveEventsPerSec: round(naive.eventsPerSec, 2),
      speedupVsNaive: round(speedup, 2),
      ingestEvents: ingest.events,
      ingestRequests: ingest.requests,
      ingestSeconds: round(ingest.seconds, 3),
      endToEndEvents: e2e.events,
      endToEndCommits: e2e.commits,
      endToEndPushes: e2e.pushes,
      endToEndPostSeconds: round(e2e.postSeconds, 3),
      endToEndSeconds: round(e2e.seconds, 3),
      naiveEvents: naive.events,
      naiveCommits: naive.commits,
      naiveSeconds: round(naive.seconds, 3),
      eventsPerList: opts.batch,
      concurrentRequests: opts.concurrency,
      ...(reconcile
        ? {
            reconcileObjects: reconcile.objects,
            reconcileTypes: reconcile.types,
            reconcileNamespaces: reconcile.namespaces,
            reconcileFirstSeconds: round(reconcile.firstSeconds, 3),
            reconcileFirstCommits: reconcile.firstCommits,
            reconcileRerunSeconds: round(reconcile.rerunSeconds, 3),
            reconcileRerunCommits: reconcile.rerunCommits,
            reconcilePeakRssMB: round(reconcile.peakRssMB, 1),
          }
        : {}),
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    } else {
      process.stdout.write(
        `\n${table([
          ['webhook ingest', `${fmt(ingest.eventsPerSec)} events/s`, `${ingest.events} events in ${ingest.requests} EventLists (${fmt(ingest.megabytes, 1)} MB), ${opts.concurrency} in flight, ${fmt(ingest.seconds, 2)} s`],
          ['end-to-end (1 partition)', `${fmt(e2e.eventsPerSec)} events/s`, `${e2e.events} events → ${e2e.commits} pushed commits in ${e2e.pushes} pushes, ${fmt(e2e.seconds, 2)} s (POSTs done at ${fmt(e2e.postSeconds, 2)} s)`],
          ['naive add+commit+push', `${fmt(naive.eventsPerSec, 1)} events/s`, `${naive.events} events → ${naive.commits} commits, ${fmt(naive.seconds, 2)} s`],
          ['speedup vs naive', `${fmt(speedup, 1)}×`, 'end-to-end / naive'],
          ...(reconcile
            ? ([
                ['reconcile, first run', `${fmt(reconcile.firstSeconds, 2)} s`, `${reconcile.objects} objects of ${reconcile.types} types in ${reconcile.namespaces} namespaces → ${reconcile.firstCommits} commit(s); peak RSS ${fmt(reconcile.peakRssMB)} MB (service + stand-in)`],
                ['reconcile, unchanged re-run', `${fmt(reconcile.rerunSeconds, 2)} s`, `${reconcile.rerunCommits} commits`],
              ] as [string, string, string][])
            : []),
        ])}\n`,
      );
    }
  } finally {
    if (embedded) await embedded.stop();
    else if (valkeyUrl) await deleteKeys(valkeyUrl, `${prefixBase}-*`).catch((err: unknown) => progress(`could not delete the benchmark's keys: ${String(err)}`));
    await rm(root, { recursive: true, force: true });
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

main().catch((err: unknown) => {
  const e = err as Error;
  process.stderr.write(`bench: FAILED: ${e instanceof BenchCheckError ? e.message : (e.stack ?? String(e))}\n`);
  process.exitCode = 1;
});
