// The router's way to read an event's object back: from the event's own cluster, with that cluster's
// client. The router stays ignorant of clients and credentials; the service hands it this function.
import type { IngestJob } from '../queues/contracts.js';
import type { ClusterClients } from './cluster-clients.js';
import { fetchObject, type FetchObjectOptions, type FetchOutcome } from './fetch-object.js';

export type ObjectFetcher = (job: IngestJob) => Promise<FetchOutcome>;

export function createObjectFetcher(clients: ClusterClients, opts: FetchObjectOptions = {}): ObjectFetcher {
  return async (job) => {
    // Looked up per event, so a configuration change takes effect with the next event.
    const client = clients.get(job.clusterId);
    if (!client) {
      return { kind: 'failed', reason: clients.whyNoClient(job.clusterId) ?? `cluster ${job.clusterId} has no API client`, transient: false };
    }
    return fetchObject(client, job.objectRef, opts);
  };
}
