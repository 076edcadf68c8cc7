// The configuration after validation and reference resolution: what the running service uses.
// Secret values are resolved here once; nothing downstream reads Secret objects again.
import type { Partition } from '../queues/names.js';
import type { ResourceRule } from './resource-schemas.js';

export interface ClusterSource {
  name: string;
  /** The bearer token this cluster's API server sends with its audit batches; undefined: no audit webhook. */
  token?: string;
  /** The CN of the client certificate this cluster's API server presents; undefined: not checked. */
  clientCommonName?: string;
  allowedNamespaces?: string[];
  /** Kubeconfig text for reading objects back; undefined: the service's own credentials. */
  kubeConfig?: string;
  /** Set when the cluster is in watch mode. */
  watch?: { auditJoinGraceMs: number };
  /** Client-side limits of requests to this cluster's API server. */
  qps: number;
  burst: number;
  /** Accepted audit events per second, over all replicas; undefined: unlimited. */
  rateLimit?: { eventsPerSecond: number; burst: number };
}

export interface ResolvedGitProvider {
  key: string;
  url: string;
  /** Resolved Secret data (decoded), or undefined for file:// and local paths. */
  credentials?: Record<string, string>;
  allowedBranches: string[];
}

export interface ResolvedTarget {
  /** `namespace/name` of the GitTarget. */
  key: string;
  provider: ResolvedGitProvider;
  branch: string;
  /** Normalised base folder ('' for the root). */
  path: string;
  clusterProvider: string;
  partition: Partition;
  /** What removes the file of an object that no longer exists (reconciliation). */
  prune: 'Never' | 'OnEvent' | 'Always';
  /** How often the target is reconciled; 0: only on start, change and demand. */
  reconcileIntervalSeconds: number;
  /** Set when Secrets are written encrypted (spec.encryption.sops); absent: REDACTED. */
  encryption?: TargetEncryption;
}

export interface TargetEncryption {
  /** The service's own age identity (AGE-SECRET-KEY-1…) of this target: opens sealed values and the target's files. */
  identity: string;
  /** Its recipient: always among `recipients`, and what the webhook seals values for. */
  identityRecipient: string;
  /** Every recipient a file is encrypted for: spec.encryption.sops.ageRecipients, then identityRecipient. */
  recipients: string[];
}

export interface ResolvedRule {
  /** `WatchRule team-a/web` or `ClusterWatchRule all`: where a match came from. */
  source: string;
  kind: 'WatchRule' | 'ClusterWatchRule';
  /** `namespace/name` of a WatchRule, `name` of a ClusterWatchRule. */
  key: string;
  /** A WatchRule selects only objects in its own namespace; a ClusterWatchRule has none. */
  namespace?: string;
  targetKey: string;
  rules: ResourceRule[];
}

export interface ResolvedConfig {
  clusters: Map<string, ClusterSource>;
  /** Every sound GitProvider, by `namespace/name`, used by a target or not (its reachability is reported either way). */
  providers: Map<string, ResolvedGitProvider>;
  targets: Map<string, ResolvedTarget>;
  rules: ResolvedRule[];
  /** Every partition the targets write to. */
  partitions: Map<string, { partition: Partition; credentials?: Record<string, string> }>;
}
