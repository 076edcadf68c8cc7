// One API client per source cluster: the credentials to read objects back from that cluster, and the
// limiter that keeps every request to it within the ClusterProvider's qps/burst. A cluster whose
// ClusterProvider names a kubeconfig Secret uses that kubeconfig; one without uses the service's own
// credentials (KUBECONFIG or in-cluster), which exist only when the service runs with them.
//
// A kubeconfig from a Secret is untrusted (whoever writes a ClusterProvider and a Secret supplies it): it
// is never given to client-node's loader, which would run its `exec` commands and read the files it names
// (the service's own service-account token among them). config/secret-kubeconfig.ts admits only a server and
// inline credentials; anything else leaves the cluster without a client, and `whyNoClient` names the field.
// The service's own kubeconfig is trusted and used as it is.
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterSource } from '../config/resolved-config.js';
import { parseSecretKubeConfig } from '../config/secret-kubeconfig.js';
import { systemClock, TokenBucket, type Clock } from './token-bucket.js';

export interface ClusterClient {
  readonly cluster: string;
  readonly kubeConfig: KubeConfig;
  /** Every request to this cluster waits on it first: `await client.limiter.take()`. */
  readonly limiter: TokenBucket;
  /** Whose credentials these are, for messages: the kubeconfig Secret or the service's own. */
  readonly credentials: string;
}

export interface ClusterClientsOptions {
  /** The service's own credentials; undefined when it runs outside a cluster without KUBECONFIG. */
  defaultKubeConfig?: KubeConfig;
  clock?: Clock;
}

type Entry = { key: string; client: ClusterClient } | { key: string; problem: string };

const FROM_SECRET = 'the kubeconfig of spec.kubeConfigSecretRef';
const OWN = "the service's own credentials";

export class ClusterClients {
  private entries = new Map<string, Entry>();
  private readonly clock: Clock;

  constructor(private readonly opts: ClusterClientsOptions = {}) {
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Takes the clusters of a new configuration. A client is rebuilt only when its kubeconfig text or its
   * limits changed, so an unrelated change keeps each cluster's limiter (and what it has spent).
   */
  update(clusters: ReadonlyMap<string, ClusterSource>): void {
    const next = new Map<string, Entry>();
    for (const [name, source] of clusters) {
      const key = JSON.stringify([source.kubeConfig ?? null, source.qps, source.burst]);
      const old = this.entries.get(name);
      next.set(name, old?.key === key ? old : this.build(name, source, key));
    }
    this.entries = next;
  }

  /** The cluster's client; undefined when it has none (see `whyNoClient`). */
  get(cluster: string): ClusterClient | undefined {
    const entry = this.entries.get(cluster);
    return entry && 'client' in entry ? entry.client : undefined;
  }

  /** Why `get(cluster)` is undefined, naming the cluster; undefined when it has a client. */
  whyNoClient(cluster: string): string | undefined {
    const entry = this.entries.get(cluster);
    if (!entry) return `cluster ${cluster} is not configured`;
    return 'problem' in entry ? entry.problem : undefined;
  }

  private build(name: string, source: ClusterSource, key: string): Entry {
    let kubeConfig: KubeConfig;
    let credentials: string;
    if (source.kubeConfig !== undefined) {
      const parsed = parseSecretKubeConfig(source.kubeConfig);
      if (!parsed.ok) return { key, problem: `cluster ${name}: ${FROM_SECRET} ${parsed.problem}` };
      kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions(parsed.options);
      credentials = FROM_SECRET;
    } else if (this.opts.defaultKubeConfig) {
      kubeConfig = this.opts.defaultKubeConfig;
      credentials = OWN;
    } else {
      return {
        key,
        problem: `cluster ${name} has no spec.kubeConfigSecretRef and the service runs without credentials of its own (neither in a cluster nor with KUBECONFIG)`,
      };
    }
    if (!kubeConfig.getCurrentCluster()) {
      return { key, problem: `cluster ${name}: no current context with a cluster in ${credentials}` };
    }
    let limiter: TokenBucket;
    try {
      limiter = new TokenBucket(source.qps, source.burst, this.clock);
    } catch (err) {
      return { key, problem: `cluster ${name}: ${(err as Error).message}` };
    }
    return { key, client: { cluster: name, kubeConfig, limiter, credentials } };
  }
}
