// What an object's own metadata says of its life: one place, so that the audit path, watch mode and
// reconcile read a Terminating object the same way.
import { isRecord } from './json.js';

/**
 * The object is Terminating: marked for deletion (metadata.deletionTimestamp), still in the cluster until
 * its finalizers are removed or its grace period ends.
 */
export function terminating(object: Record<string, unknown> | undefined): boolean {
  const metadata = object && isRecord(object.metadata) ? object.metadata : undefined;
  return typeof metadata?.deletionTimestamp === 'string' && metadata.deletionTimestamp !== '';
}
