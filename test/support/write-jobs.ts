// A valid write job for the tests of the writer's check (workers/write/validate-write.ts): what follows
// from the target and the object is derived the way the router derives it, so that a test's valid job is
// valid by construction and each forged one differs from it only in what the test changes.
import type { ObjectIdentity, WriteJob } from '../../core/contracts.js';
import { authorFor } from '../../workers/route/normalize-event.js';
import { objectFilePath } from '../../core/path-layout.js';

/** A GitTarget as the router sees it: its key, its folder in the repository and its cluster. */
export interface RoutedTarget {
  key: string;
  path: string;
  clusterProvider: string;
}

/** What a write job holds besides what its target and object decide; `user` is the audit user, the author's source. */
export type WriteFields = Pick<WriteJob, 'eventKey' | 'auditID' | 'operation' | 'content' | 'resourceVersion' | 'stageTimestamp'> & { user: string };

/** The write the router makes for `target` of `object` (its identity, less the cluster: the target's). */
export function routedWrite(target: RoutedTarget, object: Omit<ObjectIdentity, 'cluster'>, fields: WriteFields): WriteJob {
  const identity = { cluster: target.clusterProvider, ...object };
  return {
    eventKey: fields.eventKey,
    clusterId: target.clusterProvider,
    auditID: fields.auditID,
    target: target.key,
    identity,
    operation: fields.operation,
    filePath: objectFilePath(target.path, identity),
    content: fields.content,
    resourceVersion: fields.resourceVersion,
    author: authorFor(fields.user, target.clusterProvider),
    stageTimestamp: fields.stageTimestamp,
  };
}
