// The writes of the events that remove many files at once: a deletecollection, and the delete of a
// namespace. Each is one write per target (one event, one commit per target: the writer recognises a pushed
// write by its Audit-ID, Cluster and Target trailers), whose `collection` says which files go and whose
// filePath is their folder (workers/write/collection-files.ts expands it against the tree):
// - deletecollection of a type in a namespace: the targets whose rules select that type's DELETE there; the
//   files of the objects its answer listed (`names`), or, when the answer was not recorded, every file of
//   the type there but those of the objects still in the cluster (`keep`, listed by the router) that the
//   request's selectors select;
// - delete of Namespace N: every target of the cluster that records deletes in N (a ClusterWatchRule, or a
//   WatchRule of N, with DELETE) removes its folder `{path}/N` whole, every type (`everythingBelow`), and the
//   Namespace's own file where its rules select Namespaces: in one commit, by the user who deleted the
//   namespace. The namespace controller's deletecollections that follow find nothing left to remove.
import type { ResolvedTarget } from '../../config/resolved-config.js';
import type { Collection, IngestJob, ObjectIdentity, WriteJob } from '../../core/contracts.js';
import { MAX_KEPT_NAMES } from '../../core/contracts.js';
import { eventJobId } from '../../queues/names.js';
import { canonicalGroup } from '../../core/redact-secret.js';
import type { CollectionListing } from './list-collections.js';
import { identityOf } from '../../core/identity.js';
import { authorFor, normalizeEvent } from './normalize-event.js';
import { matchTargets, namespaceTargets, type CompiledRoutes } from './compile-rules.js';
import { namespaceFolderPath, objectFilePath, typeFolderPath, UnsafePathError } from '../../core/path-layout.js';

/** The delete of a Namespace (core group, no subresource): its folder goes with it. */
export function isNamespaceDelete(job: IngestJob): boolean {
  const ref = job.objectRef;
  return job.verb === 'delete' && ref.resource === 'namespaces' && canonicalGroup(ref.apiGroup) === '' && !ref.subresource && !!ref.name;
}

/** Whether some rule of the event's cluster wants it: what the webhook keeps (others are skipped, `not-selected`). */
export function eventSelected(routes: CompiledRoutes, job: IngestJob, operation: WriteJob['operation']): boolean {
  const identity = identityOf(job);
  if (matchTargets(routes, identity, operation).length > 0) return true;
  return isNamespaceDelete(job) && namespaceTargets(routes, job.clusterId, identity.name).length > 0;
}

export type CollectionRouting =
  | { kind: 'writes'; writes: { target: ResolvedTarget; data: WriteJob }[] }
  | { kind: 'unrouted' }
  | { kind: 'no-object-body'; reason: string }
  /** permanent: retrying changes nothing (an unsafe path, too many names). */
  | { kind: 'failed'; reason: string; permanent: boolean };

type Base = Omit<WriteJob, 'target' | 'filePath' | 'collection'>;

function perTarget(targets: ResolvedTarget[], base: Base, folder: (t: ResolvedTarget) => { filePath: string; collection: Collection }): CollectionRouting {
  const writes: { target: ResolvedTarget; data: WriteJob }[] = [];
  for (const target of targets) {
    try {
      writes.push({ target, data: { ...base, target: target.key, ...folder(target) } });
    } catch (err) {
      if (err instanceof UnsafePathError) return { kind: 'failed', reason: `target ${target.key}: ${err.message}`, permanent: true };
      throw err;
    }
  }
  return { kind: 'writes', writes };
}

/** The writes of a deletecollection; `listing` is the router's list of the (type, namespace) when the answer named no objects. */
function deleteCollectionWrites(job: IngestJob, routes: CompiledRoutes, listing: CollectionListing | undefined): CollectionRouting {
  const identity: ObjectIdentity = { ...identityOf(job), name: '' };
  const targets = matchTargets(routes, identity, 'DELETE');
  if (targets.length === 0) return { kind: 'unrouted' };
  let collection: Collection;
  if (job.deletedNames !== undefined) {
    collection = { names: job.deletedNames };
  } else if (listing?.kind === 'listed') {
    if (listing.names.length > MAX_KEPT_NAMES) {
      return { kind: 'failed', reason: `${identity.resource} in ${identity.namespace || 'the cluster scope'} holds ${listing.names.length} objects, more than a write may keep (${MAX_KEPT_NAMES}): record deletecollection at audit level RequestResponse`, permanent: true };
    }
    collection = { keep: listing.names, ...(job.selectors ?? {}) };
  } else if (listing?.kind === 'failed') {
    return { kind: 'failed', reason: listing.reason, permanent: false };
  } else {
    return { kind: 'no-object-body', reason: 'deletecollection whose answer was not recorded, and the router lists no cluster: record it at audit level RequestResponse' };
  }
  const base: Base = {
    eventKey: eventJobId(job.clusterId, job.auditID),
    clusterId: job.clusterId,
    auditID: job.auditID,
    identity,
    operation: 'DELETE',
    content: null,
    // No one version: it is ordered by its audit time (each deleted object had its own).
    resourceVersion: '',
    author: authorFor(job.impersonatedUser?.username ?? job.user.username, job.clusterId),
    stageTimestamp: job.stageTimestamp,
  };
  return perTarget(targets, base, (t) => ({ filePath: typeFolderPath(t.path, identity), collection }));
}

/** The writes of a Namespace's delete: its folder per target, with its own file where the rules select it. */
function namespaceDeleteWrites(job: IngestJob, routes: CompiledRoutes): CollectionRouting {
  const normalized = normalizeEvent(job);
  if (normalized.kind !== 'change') return { kind: 'no-object-body', reason: normalized.reason };
  const event = normalized.event;
  const namespace = event.identity.name;
  const targets = namespaceTargets(routes, job.clusterId, namespace);
  if (targets.length === 0) return { kind: 'unrouted' };
  const ownFile = new Set(matchTargets(routes, event.identity, 'DELETE').map((t) => t.key));
  const base: Base = {
    eventKey: event.eventKey,
    clusterId: event.clusterId,
    auditID: event.auditID,
    identity: event.identity,
    operation: 'DELETE',
    content: null,
    // The Namespace's (its deletion marked it): every file it removes takes it, so an older event of one of
    // them that arrives late does not bring it back.
    resourceVersion: event.resourceVersion,
    author: event.author,
    stageTimestamp: event.stageTimestamp,
  };
  return perTarget(targets, base, (t) => ({
    filePath: namespaceFolderPath(t.path, namespace),
    collection: { everythingBelow: true, ...(ownFile.has(t.key) ? { objectFile: objectFilePath(t.path, event.identity) } : {}) },
  }));
}

/** The writes of `job` when it removes many files at once; undefined for any other event. */
export function collectionWrites(job: IngestJob, routes: CompiledRoutes, listing: CollectionListing | undefined): CollectionRouting | undefined {
  if (job.verb === 'deletecollection') return deleteCollectionWrites(job, routes, listing);
  if (isNamespaceDelete(job)) return namespaceDeleteWrites(job, routes);
  return undefined;
}
