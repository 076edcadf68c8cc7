// The status each configuration object should show, computed from what the service knows of it: its
// problems (Ready), a GitTarget's write progress and backlog (Synced), a GitProvider's probe (Reachable).
// Pure: the time is an argument, so the same facts always give the same status.
//
// Kubernetes conventions kept here: a condition's lastTransitionTime moves only when its status changes
// (kubectl and alerting read it as "since when"), and observedGeneration says which spec the status
// describes. What the service does not know right now (a probe not run yet on this replica, a queue it
// cannot count) keeps what the cluster shows, so replicas that know less never flip a status back.
import { z } from 'zod';
import type { ConfigProblem } from '../../config/resolve-config.js';
import type { ObservedObject } from '../../config/sources/config-snapshot.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration: number;
  /** RFC 3339, seconds precision (as metav1.Time is written). */
  lastTransitionTime: string;
  /** CamelCase, as Kubernetes spells reasons. */
  reason: string;
  message: string;
}

/** A type alias (not an interface) so that it is a Record<string, unknown> where the cluster's status is one. */
export type ObjectStatus = {
  observedGeneration: number;
  conditions: Condition[];
  /** GitTarget: the last commit pushed with a change of this target. */
  lastCommit?: { sha: string; time: string };
  /** GitTarget: the jobs waiting in the target's partition queue (shared by the targets of one repository and branch). */
  backlog?: number;
  /** GitTarget: the last write error, until the next successful push. */
  lastError?: { message: string; time: string };
  /** GitTarget: events that arrived after a newer version of their object was committed (dead letters). */
  outOfOrderEvents?: number;
  /** ClusterProvider: (resource type, namespace) watches running for the cluster. */
  watchedResources?: number;
};

/** A GitTarget's progress as Valkey holds it (queues/target-progress.ts). */
export interface TargetProgressFacts {
  lastCommit?: { sha: string; time: string };
  lastError?: { message: string; time: string };
  outOfOrder?: number;
}

export type ProbeFacts = { reachable: true; message: string } | { reachable: false; reason: string; message: string };

export interface StatusFacts {
  /** The problems of this object (all of them; the first one names the Ready reason). */
  problems: readonly ConfigProblem[];
  now: Date;
  /** GitTarget: undefined when Valkey could not be read (the cluster's values are kept). */
  progress?: TargetProgressFacts;
  /** GitTarget: the partition's backlog; undefined when unknown (the cluster's value is kept). */
  backlog?: number;
  /** GitProvider: the last probe; undefined when not probed yet. */
  probe?: ProbeFacts;
  /** ClusterProvider: a count; null when the cluster has none (removed); undefined when unknown (kept). */
  watchedResources?: number | null;
  /** GitTarget (a Ready one): how its Secrets' values are written, for its Ready message. */
  secrets?: 'redacted' | { encryptedFor: number };
}

/** What a Ready GitTarget's message adds: whether its Secrets can be restored from Git. */
function secretsSentence(secrets: StatusFacts['secrets']): string {
  if (secrets === undefined) return '';
  if (secrets === 'redacted') return ' Secret values are redacted (REDACTED in Git): set spec.encryption.sops to keep them encrypted.';
  return ` Secrets are written as {name}.sops.yaml, encrypted with SOPS for ${secrets.encryptedFor} age recipient(s).`;
}

/** Long enough for every problem of an object, well under the CRD's 32768. */
const MAX_MESSAGE = 8192;

const ConditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().optional(),
  lastTransitionTime: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
});
type ObservedCondition = z.infer<typeof ConditionSchema>;

/** The conditions the cluster shows, by type; malformed entries (someone else's edit) are ignored. */
function observedConditions(status: Record<string, unknown> | undefined): Map<string, ObservedCondition> {
  const out = new Map<string, ObservedCondition>();
  const list = status?.conditions;
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    const parsed = ConditionSchema.safeParse(item);
    if (parsed.success) out.set(parsed.data.type, parsed.data);
  }
  return out;
}

export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function truncate(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 1)}…`;
}

/** `spec.branch: "x" is not a valid Git branch name; spec.path: ...`: each problem with the field to fix. */
export function problemsMessage(problems: readonly ConfigProblem[]): string {
  return truncate(problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join('; '));
}

/** The same whatever the backlog: the count is status.backlog. */
export const PENDING_MESSAGE =
  'Changes are waiting to be written; see status.backlog (the backlog of the partition queue, shared by every target of this repository and branch).';

const OBJECT_IS = {
  ClusterProvider: 'events of this cluster are accepted',
  GitProvider: 'targets may use this provider',
  GitTarget: 'changes selected for this target are written',
  WatchRule: 'the rule selects changes for its target',
  ClusterWatchRule: 'the rule selects changes for its target',
} as const;

export function desiredStatus(obj: ObservedObject, facts: StatusFacts): ObjectStatus {
  const observed = observedConditions(obj.status);
  const generation = obj.generation;
  const condition = (type: string, status: ConditionStatus, reason: string, message: string): Condition => {
    const before = observed.get(type);
    return {
      type,
      status,
      observedGeneration: generation,
      // Kept while the status stays: the time says since when the object is (not) Ready.
      lastTransitionTime: before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(facts.now),
      reason,
      message: truncate(message),
    };
  };
  /** The cluster's condition of `type`, when it describes this generation (a probe result of an older spec is stale). */
  const keep = (type: string): Condition | undefined => {
    const before = observed.get(type);
    if (!before || before.observedGeneration !== generation || !before.reason || before.lastTransitionTime === undefined) return undefined;
    return { type, status: before.status, observedGeneration: generation, lastTransitionTime: before.lastTransitionTime, reason: before.reason, message: before.message ?? '' };
  };

  const ready = facts.problems.length === 0;
  const first = facts.problems[0];
  const conditions: Condition[] = [
    first === undefined
      ? condition('Ready', 'True', 'Ready', `The configuration is valid: ${OBJECT_IS[obj.kind]}.${obj.kind === 'GitTarget' ? secretsSentence(facts.secrets) : ''}`)
      : condition('Ready', 'False', first.reason, problemsMessage(facts.problems)),
  ];
  const status: ObjectStatus = { observedGeneration: generation, conditions };
  const prior = obj.status ?? {};

  if (obj.kind === 'GitTarget') {
    // A commit stays the last one until Valkey knows a newer one (even if Valkey lost its record).
    const lastCommit = facts.progress?.lastCommit ?? asCommit(prior.lastCommit);
    const lastError = facts.progress ? facts.progress.lastError : asError(prior.lastError);
    if (lastCommit) status.lastCommit = lastCommit;
    if (lastError) status.lastError = lastError;
    const outOfOrder = facts.progress ? facts.progress.outOfOrder : asCount(prior.outOfOrderEvents);
    if (outOfOrder) status.outOfOrderEvents = outOfOrder;
    // A broken target writes nothing: its partition (if any) is not its own to report.
    const backlog = ready ? (facts.backlog ?? asCount(prior.backlog)) : undefined;
    if (backlog !== undefined) status.backlog = backlog;
    const synced = (): Condition => {
      if (!ready) return condition('Synced', 'Unknown', 'NotReady', 'Nothing is written while the target is not Ready.');
      // The messages never carry the backlog count: on a busy target it changes all the time, and is
      // written to status.backlog alone (at most once per status-writer interval), not to a condition too.
      if (lastError) return condition('Synced', 'False', 'WriteFailed', `The last write failed at ${lastError.time}: ${lastError.message}`);
      if (facts.backlog === undefined) return keep('Synced') ?? condition('Synced', 'Unknown', 'BacklogUnknown', 'The partition queue could not be read yet.');
      if (facts.backlog > 0) return condition('Synced', 'False', 'Pending', PENDING_MESSAGE);
      return condition('Synced', 'True', 'UpToDate', lastCommit ? `Every change is pushed; the last commit is ${lastCommit.sha}.` : 'No change waits to be written.');
    };
    conditions.push(synced());
  }

  if (obj.kind === 'GitProvider') {
    const probe = facts.probe;
    if (!ready) conditions.push(condition('Reachable', 'Unknown', 'NotReady', 'The repository is probed once the provider is Ready.'));
    else if (probe?.reachable === true) conditions.push(condition('Reachable', 'True', 'Reachable', probe.message));
    else if (probe?.reachable === false) conditions.push(condition('Reachable', 'False', probe.reason, probe.message));
    else conditions.push(keep('Reachable') ?? condition('Reachable', 'Unknown', 'NotProbed', 'The repository has not been probed yet.'));
  }

  if (obj.kind === 'ClusterProvider') {
    const watched = facts.watchedResources === undefined ? asCount(prior.watchedResources) : (facts.watchedResources ?? undefined);
    if (watched !== undefined) status.watchedResources = watched;
  }
  return status;
}

function asCount(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
}

function asCommit(v: unknown): ObjectStatus['lastCommit'] {
  const r = z.object({ sha: z.string(), time: z.string() }).safeParse(v);
  return r.success ? r.data : undefined;
}

function asError(v: unknown): ObjectStatus['lastError'] {
  const r = z.object({ message: z.string(), time: z.string() }).safeParse(v);
  return r.success ? r.data : undefined;
}

/**
 * Whether the cluster's status (`observed`) must be changed to show `desired`. A condition's
 * lastTransitionTime is not compared: a desired condition with the observed status carries the observed
 * time anyway, and a replica that computed another time for the same transition must not write again.
 */
export function statusDiffers(observed: Record<string, unknown> | undefined, desired: ObjectStatus): boolean {
  if (observed === undefined) return true;
  const keys = new Set([...Object.keys(observed), ...Object.keys(desired)]);
  for (const key of keys) {
    if (key === 'conditions') continue;
    if (!sameJson(observed[key], (desired as Record<string, unknown>)[key])) return true;
  }
  const before = observedConditions(observed);
  if (!Array.isArray(observed.conditions) || observed.conditions.length !== desired.conditions.length) return true;
  return desired.conditions.some((c) => {
    const o = before.get(c.type);
    return (
      o === undefined ||
      o.status !== c.status ||
      o.reason !== c.reason ||
      o.message !== c.message ||
      o.observedGeneration !== c.observedGeneration ||
      o.lastTransitionTime === undefined
    );
  });
}

/** Structural equality of JSON values; key order does not matter, an undefined member equals a missing one. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  for (const k of keys) if (!sameJson(ra[k], rb[k])) return false;
  return true;
}
