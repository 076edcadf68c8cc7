// Reads what the remote holds and compares it with what the sender got acknowledged: the counts of a
// scenario's row and the problems (order, final content, force-pushes) that make it fail.
import { parse } from 'yaml';
import type { GuardedRemote } from './guarded-remote.js';
import { NAMESPACE, type SentEvent } from './event-sender.js';

export interface Verification {
  committed: number;
  lost: string[];
  duplicated: string[];
  concurrentPushes: number;
  /** Acknowledged events expected not to be committed (poison) that indeed were not. */
  expectedNotCommitted: number;
  problems: string[];
}

export interface RemoteCommit {
  sha: string;
  auditIDs: string[];
}

/** Commits of the branch, oldest first, with their Audit-ID trailers. */
export async function remoteCommits(remote: GuardedRemote): Promise<RemoteCommit[]> {
  let out: string;
  try {
    out = await remote.git('log', '--reverse', '--topo-order', '--format=%H%x1f%(trailers:key=Audit-ID,valueonly,separator=%x2C)%x1e', remote.branch);
  } catch {
    return [];
  }
  return out
    .split('\x1e')
    .map((r) => r.trim())
    .filter(Boolean)
    .map((r) => {
      const [sha, ids] = r.split('\x1f');
      return { sha: sha!, auditIDs: (ids ?? '').split(',').map((s) => s.trim()).filter(Boolean) };
    });
}

/** How many commits with an Audit-ID trailer the branch holds (cheap enough to poll). */
export async function countAuditCommits(remote: GuardedRemote): Promise<number> {
  try {
    const out = await remote.git('log', '--format=%(trailers:key=Audit-ID,valueonly,separator=%x2C)', remote.branch);
    return out.split('\n').filter((l) => l.trim() !== '').length;
  } catch {
    return 0;
  }
}

export function objectPath(cluster: string, object: string): string {
  return `clusters/${cluster}/${NAMESPACE}/configmaps/${object}.yaml`;
}

export async function verify(remote: GuardedRemote, cluster: string, events: SentEvent[]): Promise<Verification> {
  const problems: string[] = [];
  const commits = await remoteCommits(remote);
  const count = new Map<string, number>();
  const position = new Map<string, number>();
  let committed = 0;
  commits.forEach((c, i) => {
    for (const id of c.auditIDs) {
      committed++;
      count.set(id, (count.get(id) ?? 0) + 1);
      if (!position.has(id)) position.set(id, i);
    }
  });
  const acked = events.filter((e) => e.acknowledged);
  const lost = acked.filter((e) => !e.poison && !count.has(e.auditID)).map((e) => e.auditID);
  const duplicated = [...count.entries()].filter(([, n]) => n > 1).map(([id]) => id);
  const poisonCommitted = acked.filter((e) => e.poison && count.has(e.auditID));
  for (const p of poisonCommitted) problems.push(`the poison event ${p.auditID} (${p.object}) was committed although the remote refuses its path`);

  const known = new Set(events.map((e) => e.auditID));
  const strangers = [...count.keys()].filter((id) => !known.has(id));
  if (strangers.length > 0) problems.push(`${strangers.length} commits carry an Audit-ID the sender never sent (e.g. ${strangers[0]})`);

  // Order per object: its commits in the order its events were made.
  const byObject = new Map<string, SentEvent[]>();
  for (const e of events) if (position.has(e.auditID)) byObject.set(e.object, [...(byObject.get(e.object) ?? []), e]);
  const orderProblems: string[] = [];
  for (const [object, list] of byObject) {
    const inGit = [...list].sort((a, b) => position.get(a.auditID)! - position.get(b.auditID)!);
    for (let i = 1; i < inGit.length; i++) {
      if (inGit[i]!.seq < inGit[i - 1]!.seq) {
        orderProblems.push(`${object}: event #${inGit[i]!.seq} (${inGit[i]!.auditID}) committed after #${inGit[i - 1]!.seq}`);
        break;
      }
    }
  }
  if (orderProblems.length > 0) problems.push(`order broken for ${orderProblems.length} objects: ${orderProblems.slice(0, 3).join('; ')}`);

  // Final content: each object's file holds its newest committed event.
  const contentProblems: string[] = [];
  for (const [object, list] of byObject) {
    const newest = list.reduce((a, b) => (b.seq > a.seq ? b : a));
    let seq: string | undefined;
    try {
      const doc = parse(await remote.git('show', `${remote.branch}:${objectPath(cluster, object)}`)) as { data?: { seq?: string } };
      seq = doc.data?.seq;
    } catch {
      seq = undefined;
    }
    if (seq !== String(newest.seq)) contentProblems.push(`${object} holds seq ${seq ?? '(no file)'}, its newest committed event is #${newest.seq}`);
  }
  if (contentProblems.length > 0) problems.push(`final tree wrong for ${contentProblems.length} objects: ${contentProblems.slice(0, 3).join('; ')}`);

  const force = await remote.forcePushes();
  if (force.length > 0) problems.push(`${force.length} non-fast-forward (force) pushes were attempted: ${force[0]}`);

  return {
    committed,
    lost,
    duplicated,
    concurrentPushes: (await remote.concurrentRefusals()).length,
    expectedNotCommitted: acked.filter((e) => e.poison && !count.has(e.auditID)).length,
    problems,
  };
}
