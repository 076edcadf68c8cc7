// The canonical identity of the object an ingest job changed. Every key (ordering, dedup) and every
// file path is derived from it, so it is computed in exactly one place, from the audit objectRef: the
// namespace always (a body's own namespace never moves an object to another folder), the name, group and
// version too, where the objectRef is silent (a create with generateName) from the object's own
// metadata and apiVersion. The webhook refuses events whose body disagrees with their objectRef.
import type { IngestJob, ObjectIdentity } from './contracts.js';
import { canonicalGroup } from './redact-secret.js';
import { isRecord, nonEmptyString } from './json.js';

/** Splits an object's apiVersion (`apps/v1`, `v1`) into group and version. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: canonicalGroup(apiVersion.slice(0, slash)), version: apiVersion.slice(slash + 1) };
}

/**
 * group '' for the core group; version from objectRef.apiVersion or the object's apiVersion;
 * namespace from objectRef.namespace ('' when cluster-scoped); name from objectRef.name or the object's
 * metadata.name ('' when neither says — the caller decides what a nameless event means).
 */
export function identityOf(job: IngestJob): ObjectIdentity {
  const ref = job.objectRef;
  const object = job.object;
  const metadata = object && isRecord(object.metadata) ? object.metadata : undefined;
  const fromObject =
    object && typeof object.apiVersion === 'string' ? splitApiVersion(object.apiVersion) : undefined;
  const group = ref.apiGroup !== undefined ? canonicalGroup(ref.apiGroup) : (fromObject?.group ?? '');
  // The API server's request info puts a Namespace's own name into objectRef.namespace; a Namespace is
  // cluster-scoped all the same (and a watch event of it says so), so one object has one identity.
  const isNamespace = group === '' && ref.resource === 'namespaces';
  return {
    cluster: job.clusterId,
    group,
    version: nonEmptyString(ref.apiVersion) ?? fromObject?.version ?? '',
    resource: ref.resource,
    namespace: isNamespace ? '' : (nonEmptyString(ref.namespace) ?? ''),
    name: nonEmptyString(ref.name) ?? nonEmptyString(metadata?.name) ?? '',
  };
}

/**
 * A stable, unambiguous string for one object: a JSON array of cluster, group, resource, namespace,
 * name in that order (JSON escaping keeps any separator inside a field from being misread).
 * The version is deliberately left out: one stored object served as apps/v1 and apps/v1beta2 is
 * still one object, and its Git file path carries no version either.
 */
export function identityKey(id: ObjectIdentity): string {
  return JSON.stringify([id.cluster, id.group, id.resource, id.namespace, id.name]);
}
