// What each source cluster serves, from API discovery, kept fresh: the "rule selects nothing" check
// (a typo in a resource name, a CRD not installed yet) compares every rule with it. Discovery runs for
// each cluster that has an API client, when it appears and then every minute; a cluster whose discovery
// fails keeps its last answer (or none: then nothing is reported for its rules rather than a false alarm).
import type { Logger } from 'pino';
import type { ResourceScope } from '../core/resource-scope.js';
import type { ClusterClients } from './cluster-clients.js';
import { discoverResources, resourceNamesOf } from './discovery.js';

export interface DiscoveryCacheOptions {
  clients: ClusterClients;
  logger: Logger;
  /** @defaultValue 60000 */
  intervalMs?: number;
  /** Called when what a cluster serves changed (a CRD was installed or removed). */
  onChange: () => void;
}

export interface DiscoveryCache {
  /** The clusters to keep discovered; new ones are discovered at once. */
  track(clusters: Iterable<string>): void;
  /** `group/resource` names the cluster serves; undefined until its discovery answered. */
  resourcesOf(cluster: string): ReadonlySet<string> | undefined;
  /** Whether a type the cluster serves is namespaced; undefined when discovery does not know it (yet). */
  scopeOf(cluster: string, group: string, resource: string): ResourceScope | undefined;
  stop(): void;
}

export function startDiscoveryCache(opts: DiscoveryCacheOptions): DiscoveryCache {
  const known = new Map<string, { names: ReadonlySet<string>; scopes: ReadonlyMap<string, ResourceScope>; fingerprint: string }>();
  let tracked = new Set<string>();
  const inFlight = new Set<string>();

  const discover = async (cluster: string): Promise<void> => {
    const client = opts.clients.get(cluster);
    if (!client || inFlight.has(cluster)) return;
    inFlight.add(cluster);
    try {
      const resources = await discoverResources(client.kubeConfig, { limiter: client.limiter });
      const names = resourceNamesOf(resources);
      const scopes = new Map(resources.map((r) => [`${r.group}/${r.resource}`, r.namespaced ? 'namespaced' : 'cluster'] as const));
      const fingerprint = [...scopes].map(([name, scope]) => `${name}:${scope}`).sort().join(',');
      if (!tracked.has(cluster) || known.get(cluster)?.fingerprint === fingerprint) return;
      known.set(cluster, { names, scopes, fingerprint });
      opts.onChange();
    } catch (err) {
      opts.logger.warn({ cluster, err: err instanceof Error ? err.message : String(err) }, 'API discovery failed; rules of this cluster are not checked against it');
    } finally {
      inFlight.delete(cluster);
    }
  };

  const timer = setInterval(() => {
    for (const cluster of tracked) void discover(cluster);
  }, opts.intervalMs ?? 60_000);
  timer.unref();

  return {
    track(clusters) {
      const next = new Set(clusters);
      for (const cluster of next) if (!tracked.has(cluster) || !known.has(cluster)) void discover(cluster);
      for (const cluster of known.keys()) if (!next.has(cluster)) known.delete(cluster);
      tracked = next;
    },
    resourcesOf: (cluster) => known.get(cluster)?.names,
    scopeOf: (cluster, group, resource) => known.get(cluster)?.scopes.get(`${group}/${resource}`),
    stop: () => clearInterval(timer),
  };
}
