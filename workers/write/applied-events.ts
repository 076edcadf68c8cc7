// Which events the remote already holds, read back from the trailers of its newest commits. A writer that
// died after its push but before completing its jobs leaves those jobs to be delivered again; the next
// writer finds their commits here and completes them without committing twice. The trailers
// are the record because they travel with the commits: no second store can disagree with the remote.
import type { WriteJob } from '../../core/contracts.js';
import { parseIndexRanges, parseTrailers, reconcileAuditID } from './commit-message.js';
import { runGit } from '../../git/git-process.js';

/**
 * The identity of one write: one event written to one target. A reconcile write's auditID is
 * reconcileAuditID(runId, index), so the same function names it.
 */
export function appliedKey(w: Pick<WriteJob, 'clusterId' | 'auditID' | 'target'>): string {
  return `${w.clusterId}\n${w.auditID}\n${w.target}`;
}

/** Keys of the writes recorded in the last `depth` commits of `tip`. */
export async function readAppliedKeys(gitDir: string, tip: string | null, depth: number): Promise<Set<string>> {
  const keys = new Set<string>();
  if (!tip) return keys;
  const r = await runGit(gitDir, ['log', `-n${depth}`, '--format=%B%x00', tip, '--']);
  if (r.exitCode !== 0) throw new Error(`git log of ${tip} failed (exit ${r.exitCode}): ${r.stderr}`);
  for (const message of r.stdout.toString('utf8').split('\0')) {
    const t = parseTrailers(message);
    if (t['Audit-ID'] && t.Cluster && t.Target) keys.add(appliedKey({ clusterId: t.Cluster, auditID: t['Audit-ID'], target: t.Target }));
    // A reconcile commit stands for the run's writes it names (by index): each is applied.
    else if (t['Reconcile-Run'] && t['Reconcile-Writes'] && t.Cluster && t.Target) {
      for (const n of parseIndexRanges(t['Reconcile-Writes'])) {
        keys.add(appliedKey({ clusterId: t.Cluster, auditID: reconcileAuditID(t['Reconcile-Run'], n), target: t.Target }));
      }
    }
  }
  return keys;
}
