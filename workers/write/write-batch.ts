// Writes one batch of a partition's events to the remote: plan, commit with fast-import, check the lease,
// push once without force. And what to do when the push is refused:
// - someone else pushed (non-fast-forward): fetch, plan again on top of their commit, push again;
// - the remote refused it (a hook): find the first commit it refuses, landing the ones before it (a
//   binary search over prefixes of the chain), then go on without that event. An event the remote keeps
//   refusing while it accepts others is poison: it fails alone (into BullMQ's retries, then the dead
//   letters) and the partition goes on. When the remote accepts nothing at all, no event is blamed: the
//   remote is down (or refusing everything) and the whole batch waits at the head of the queue.
import type { Logger } from 'pino';
import type { GitAuthor, WriteJob, WriteResult } from '../../core/contracts.js';
import { JobFailure } from '../../queues/exclusive-batch-consumer.js';
import type { HeldLease } from '../../queues/lease.js';
import { appliedKey, readAppliedKeys } from './applied-events.js';
import { filesIn, needsContent, type ContentOf } from './collection-files.js';
import { blobSha } from '../../git/git-objects.js';
import { readBlobs } from '../../git/read-blobs.js';
import { writeCommits } from '../../git/fast-import-committer.js';
import type { Mirror } from '../../git/git-remote.js';
import { keepNewestVersion, planCommits, versionLeft, type CommitPlan } from './plan-commits.js';
import { readTreeIndex } from '../../git/tree-index.js';
import { isSopsWrite, openSealed, withSopsContents, type WriteEncryption } from './sops-writes.js';
import type { SecretValues } from '../../core/sealed-values.js';

/** A private ref: fast-import moves it freely, nothing else reads it. */
const WORK_REF = 'refs/reverser/work';
/** Non-fast-forward refusals of one batch before it waits (someone pushes to the branch all the time). */
const MAX_CONFLICTS = 3;
/**
 * First commits refused in a row, with nothing landed, after which the remote counts as refusing
 * everything (and the batch waits). More poison events than this at the head of the queue at once would
 * hold the partition until one of them is blamed by other evidence; each suspect costs two pushes.
 */
const MAX_SUSPECTS = 5;
/** How many applied-write keys the state keeps beyond what the last fetch read. */
const MAX_APPLIED_KEYS = 20_000;

/** Thrown when others keep pushing to the branch; nothing of the batch was lost, it waits and retries. */
export class PushConflictError extends Error {
  override name = 'PushConflictError';
}

/** Thrown when the remote refuses every commit of the batch: no event is blamed, the batch waits. */
export class RemoteRefusingError extends Error {
  override name = 'RemoteRefusingError';
}

/** How the error of a poison event begins; a retried job whose last error begins so was refused before. */
export const REFUSED_PREFIX = 'the remote refused the commit of';

/** The failure of one poison event: the remote refused its commit while it accepted others. */
export class PushRefusedError extends Error {
  override name = 'PushRefusedError';
}

/** The remote as this writer last saw it. */
export interface RemoteState {
  tip: string | null;
  /** path → blob sha at `tip`. */
  tree: Map<string, string>;
  /** appliedKey of the writes recorded in the newest commits of `tip`. */
  applied: Set<string>;
}

export async function loadRemoteState(repo: Mirror, depth: number): Promise<RemoteState> {
  const tip = await repo.fetch();
  const [tree, applied] = await Promise.all([readTreeIndex(repo.gitDir, tip), readAppliedKeys(repo.gitDir, tip, depth)]);
  return { tip, tree, applied };
}

export interface WriteBatchDeps {
  repo: Mirror;
  lease: HeldLease;
  committer: GitAuthor;
  log: Logger;
  /** How many commits back to look for writes already applied, when the remote is fetched. */
  appliedDepth: number;
  /** The encryption of a job's target (spec.encryption.sops), or undefined: its Secrets are written REDACTED. */
  encryptionOf?: (job: WriteJob) => WriteEncryption | undefined;
}

export interface BatchWrite {
  /** One per job, in the jobs' order. */
  results: (WriteResult | JobFailure)[];
  /** The remote after the batch, to build the next batch on without fetching. */
  state: RemoteState;
  /** path → newest resourceVersion of the writes that landed or were found applied. */
  versions: Map<string, string>;
  commits: number;
}

function withApplied(applied: Set<string>, jobs: WriteJob[]): Set<string> {
  for (const job of jobs) applied.add(appliedKey(job));
  for (const key of applied) {
    if (applied.size <= MAX_APPLIED_KEYS) break;
    applied.delete(key); // oldest first: a Set keeps insertion order
  }
  return applied;
}

/**
 * The contents the plan of `batch` on `tree` needs: the files in the folders of its collection writes with a
 * label selector (read from the mirror into `cache`), and what the batch itself writes. Undefined: none needed.
 */
async function contentsFor(batch: readonly WriteJob[], tree: ReadonlyMap<string, string>, gitDir: string, cache: Map<string, string>): Promise<ContentOf | undefined> {
  const folders = batch.filter((job) => needsContent(job.collection)).map((job) => job.filePath);
  if (folders.length === 0) return undefined;
  for (const job of batch) if (job.content !== null) cache.set(blobSha(job.content), job.content);
  const missing = folders.flatMap((folder) => filesIn(tree, folder).map((path) => tree.get(path)!)).filter((sha) => !cache.has(sha));
  for (const [sha, content] of await readBlobs(gitDir, missing)) cache.set(sha, content);
  return (sha) => cache.get(sha);
}

/** Whether two writes touch a common file: the same path, or one inside the folder of a collection write. */
function overlaps(a: WriteJob, b: WriteJob): boolean {
  if (a.filePath === b.filePath) return true;
  const inside = (folderJob: WriteJob, other: WriteJob) =>
    folderJob.collection !== undefined && (other.filePath.startsWith(`${folderJob.filePath}/`) || other.filePath === folderJob.collection.objectFile);
  return inside(a, b) || inside(b, a);
}

/**
 * Writes `jobs` (in the order the changes happened) on top of `start` (or a fresh fetch).
 * `appliedVersions` is the stale-event guard: path → last applied resourceVersion.
 */
export async function writeBatch(
  jobs: WriteJob[],
  appliedVersions: ReadonlyMap<string, string>,
  start: RemoteState | undefined,
  /** Per job: an earlier attempt was refused as poison (then one more refusal suffices to blame it). */
  refusedBefore: boolean[],
  deps: WriteBatchDeps,
): Promise<BatchWrite> {
  const { repo, lease, log } = deps;
  let state = start ?? (await loadRemoteState(repo, deps.appliedDepth));
  const results: (WriteResult | JobFailure)[] = new Array(jobs.length);
  const known = new Map(appliedVersions); // grows with what lands, for the stale checks of later rounds
  const landedVersions = new Map<string, string>();
  /** Refused commits not yet blamed: the jobs of each (one for a live event, a reconcile run's writes). */
  let suspects: { indices: number[]; detail: string }[] = [];
  /** Jobs on the file of a suspect: they must not land before it, or that file's history reorders. */
  let held: number[] = [];
  /** The jobs of the suspects: a job that touches a file of one of them is held. */
  const suspectJobs: WriteJob[] = [];
  /** File contents by blob id: for the label selectors of collection writes and the SOPS files' previous text. */
  const contents = new Map<string, string>();
  let landed = false;
  let conflicts = 0;
  let commits = 0;

  // The Secrets of targets with encryption: their sealed values are opened once per batch; one that does not
  // open fails alone (retried, then a dead letter to replay once the key Secret is right again).
  const encryptionOf = deps.encryptionOf ?? (() => undefined);
  const opened = new Map<number, SecretValues>();
  const unopened = new Set<number>();
  for (const [i, job] of jobs.entries()) {
    const encryption = encryptionOf(job);
    if (!job.sealedValues || !isSopsWrite(job, encryption)) continue;
    try {
      opened.set(i, await openSealed(job.sealedValues, encryption));
    } catch (err) {
      log.warn({ file: job.filePath, auditID: job.auditID, err: (err as Error).message }, "could not open a Secret's sealed values");
      results[i] = new JobFailure(err as Error);
      unopened.add(i);
    }
  }
  /** The batch of `indices` as it is planned: the content of each SOPS write is its file on top of `state`. */
  const planned = (indices: number[]): Promise<WriteJob[]> =>
    withSopsContents(
      indices.map((i) => jobs[i]!),
      indices,
      {
        encryptionOf,
        valuesOf: (i) => opened.get(i),
        known,
        unreadable: (path, err) =>
          log.warn({ file: path, err: err.message }, "the Secret's file in Git does not open with the target's identity: a write without values keeps none of its values (REDACTED)"),
        previousOf: async (paths) => {
          const shas = paths.map((p) => state.tree.get(p)).filter((sha): sha is string => sha !== undefined);
          const missing = shas.filter((sha) => !contents.has(sha));
          if (missing.length > 0) for (const [sha, text] of await readBlobs(repo.gitDir, missing)) contents.set(sha, text);
          const out = new Map<string, string>();
          for (const p of paths) {
            const sha = state.tree.get(p);
            const text = sha === undefined ? undefined : contents.get(sha);
            if (text !== undefined) out.set(p, text);
          }
          return out;
        },
      },
    );

  /** Completes the first `count` of `indices` from `plan`, whose commits up to `head` are on the remote. */
  const finalize = (indices: number[], plan: CommitPlan, shas: string[], count: number, head: string | null) => {
    for (let k = 0; k < count; k++) {
      const outcome = plan.outcomes[k]!;
      const job = jobs[indices[k]!]!;
      results[indices[k]!] =
        outcome.kind === 'commit'
          ? { outcome: 'committed', commit: shas[outcome.commitIndex]!, pushedAs: head ?? '', ...(outcome.removed ? { filesDeleted: outcome.removed.length } : {}) }
          : { outcome: 'unchanged', reason: outcome.reason, head: head ?? '' };
      if (outcome.kind !== 'unchanged' || outcome.reason !== 'stale') {
        // A collection write's filePath is a folder: its version goes to the files it removed.
        for (const path of job.collection ? (outcome.kind === 'commit' ? (outcome.removed ?? []) : []) : [job.filePath]) {
          const version = versionLeft(job, known.get(path));
          keepNewestVersion(landedVersions, path, version);
          keepNewestVersion(known, path, version);
        }
      }
    }
  };

  const runPass = async (work: number[]) => {
    let pending = work;
    while (pending.length > 0) {
      const batch = await planned(pending);
      const plan = planCommits(batch, state.tree, known, deps.committer, new Date(), state.applied, await contentsFor(batch, state.tree, repo.gitDir, contents));
      if (plan.commits.length === 0) {
        finalize(pending, plan, [], batch.length, state.tip);
        break;
      }
      const shas = await writeCommits(repo.gitDir, WORK_REF, state.tip, plan.commits);
      const head = shas[shas.length - 1]!;
      await lease.assertHeld(); // the fence: a writer that lost its lease never pushes
      const pushed = await repo.push(head, state.tip);
      if (pushed.ok) {
        finalize(pending, plan, shas, batch.length, head);
        state = { tip: head, tree: plan.tree, applied: withApplied(state.applied, batch) };
        landed = true;
        commits += shas.length;
        break;
      }
      if (pushed.reason === 'rejected-non-fast-forward') {
        conflicts++;
        log.warn({ conflicts, detail: pushed.detail }, 'someone else pushed to the branch; planning again on top of it');
        if (conflicts > MAX_CONFLICTS) throw new PushConflictError(`the branch moved under ${conflicts} pushes in a row: ${pushed.detail}`);
        state = await loadRemoteState(repo, deps.appliedDepth);
        continue;
      }

      // Refused by the remote itself: find the first commit it refuses, landing the ones before it.
      const found = await landUntilRefused(shas, state.tip, pushed.detail, deps);
    if (found.refused === -1) {
      finalize(pending, plan, shas, batch.length, head);
      state = { tip: head, tree: plan.tree, applied: withApplied(state.applied, batch) };
      landed = true;
      commits += shas.length;
      break;
    }
      const culprit = plan.outcomes.findIndex((o) => o.kind === 'commit' && o.commitIndex === found.refused);
      // Every job of the refused commit is blamed together: one live event, or a reconcile run's writes.
      const blamed = plan.outcomes.flatMap((o, k) => (o.kind === 'commit' && o.commitIndex === found.refused ? [pending[k]!] : []));
      // The jobs before the culprit are final: their commits landed, or they needed none.
      finalize(pending, plan, shas, culprit, found.base);
      if (found.refused > 0) {
        state = { tip: found.base, tree: await readTreeIndex(repo.gitDir, found.base!), applied: withApplied(state.applied, batch.slice(0, culprit)) };
        landed = true;
        commits += found.refused;
      }
      const job = batch[culprit]!;
      const what = job.reconcile
        ? `reconcile run ${job.reconcile.runId} of ${job.target} (${blamed.length} file(s))`
        : `${job.operation} ${job.filePath} (audit ID ${job.auditID})`;
      const why = `${REFUSED_PREFIX} ${what}: ${found.detail}`;
      log.warn({ file: job.filePath, auditID: job.auditID, detail: found.detail, refusedAt: found.refused, commitsTried: shas.length }, 'the remote refused one commit');
      // Refused right after the remote accepted the commit before it: that event is poison. Refused as
      // the first commit: a suspect; the remote may be refusing everything.
      // A job refused as poison before (while others landed) needs no new evidence: alone in the queue,
      // nothing else could land to show it.
      if (found.refused > 0 || blamed.every((i) => refusedBefore[i])) {
        for (const i of blamed) results[i] = new JobFailure(new PushRefusedError(why));
      } else {
        suspects.push({ indices: blamed, detail: why });
        for (const i of blamed) suspectJobs.push(jobs[i]!);
      }
      if (!landed && suspects.length >= MAX_SUSPECTS) break;
      const done = new Set(blamed);
      pending = pending.slice(culprit + 1).filter((i) => {
        if (done.has(i)) return false;
        if (!suspectJobs.some((suspect) => overlaps(suspect, jobs[i]!))) return true;
        held.push(i);
        return false;
      });
    }
  };

  for (let work = jobs.flatMap((_, i) => (unopened.has(i) ? [] : [i])); work.length > 0; ) {
    await runPass(work);
    if (suspects.length > 0 && !landed) {
      // The remote accepted nothing: no event is to blame, the batch waits.
      throw new RemoteRefusingError(`the remote refused every commit tried (${suspects.length}): ${suspects[0]!.detail}`);
    }
    await retrySuspects();
    // What waited for the suspects' files goes now, in its order, behind them.
    work = held;
    held = [];
    suspects = [];
    suspectJobs.length = 0;
  }
  return { results, state, versions: landedVersions, commits };

  async function retrySuspects(): Promise<void> {
    // Suspects excluded before something landed get one more try on top of it: refused again while the
    // remote accepts others, they are poison; accepted, the remote had just recovered (they land a little
    // late, after the events that overtook them).
    for (const suspect of suspects) {
      const batch = await planned(suspect.indices);
      const plan = planCommits(batch, state.tree, known, deps.committer, new Date(), state.applied, await contentsFor(batch, state.tree, repo.gitDir, contents));
      if (plan.commits.length === 0) {
        finalize(suspect.indices, plan, [], batch.length, state.tip);
        continue;
      }
      const shas = await writeCommits(repo.gitDir, WORK_REF, state.tip, plan.commits);
      const head = shas[shas.length - 1]!;
      await lease.assertHeld();
      const pushed = await repo.push(head, state.tip);
      if (pushed.ok) {
        finalize(suspect.indices, plan, shas, batch.length, head);
        state = { tip: head, tree: plan.tree, applied: withApplied(state.applied, batch) };
        commits += shas.length;
      } else if (pushed.reason === 'rejected-by-remote') {
        for (const i of suspect.indices) results[i] = new JobFailure(new PushRefusedError(suspect.detail));
      } else {
        throw new PushConflictError(`the branch moved while retrying a refused commit: ${pushed.detail}`);
      }
    }
  }
}

/**
 * Pushes prefixes of the chain `shas` (built on `base`) to find the first commit the remote refuses; the
 * commits before it land on the way. The first commit is tried alone first: when the remote refuses
 * everything, that answers in one push instead of a binary search.
 */
async function landUntilRefused(
  shas: string[],
  base: string | null,
  detail: string,
  deps: Pick<WriteBatchDeps, 'repo' | 'lease'>,
): Promise<{ refused: number; base: string | null; detail: string }> {
  // refused: the index of the first refused commit, or -1 when in the end every commit landed.
  let lo = 0;
  let hi = shas.length - 1;
  /** Whether `hi` was refused by a probe of this search, not only by the push before it. */
  let hiProbed = false;
  const probe = async (index: number) => {
    await deps.lease.assertHeld();
    const r = await deps.repo.push(shas[index]!, base);
    if (r.ok) {
      base = shas[index]!;
      lo = index + 1;
    } else if (r.reason === 'rejected-by-remote') {
      hi = index;
      hiProbed = true;
      detail = r.detail;
    } else {
      throw new PushConflictError(`the branch moved while isolating a refused commit: ${r.detail}`);
    }
  };
  if (lo < hi) await probe(0);
  while (lo < hi) await probe((lo + hi) >> 1);
  // Commits landed during the search, and the last one was refused only before it began: the remote
  // may have come back meanwhile, so ask again before blaming it.
  if (lo > 0 && !hiProbed) {
    await probe(hi);
    if (lo > hi) return { refused: -1, base, detail };
  }
  return { refused: lo, base, detail };
}
