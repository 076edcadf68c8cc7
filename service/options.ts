// Every option of startService, each default in one place. An option that an environment variable sets
// takes that variable's default (config/env.ts); an option that one part of the service reads alone is
// passed to it unset and that part's default holds (named in the option's comment), never copied here.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ENV_DEFAULTS } from '../config/env.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { DashboardCredentials, TrustedHeaderOptions } from '../dashboard/basic-auth.js';
import type { TlsFiles } from '../dashboard/listen.js';
import { fixedConfigSource, type ConfigSource } from '../config/sources/config-snapshot.js';
import { DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES } from '../queues/cluster-budget.js';
import type { GitAuthor } from '../core/contracts.js';
import { DEFAULT_RETENTION, type Retention } from '../queues/job-options.js';
import type { ValkeyClientOptions } from '../queues/valkey-client-options.js';
import type { ObjectLimits } from '../core/object-limits.js';

/** Every IPv4 interface: where both ports listen without LISTEN_ADDRESS. */
export { DEFAULT_HOST } from '../dashboard/listen.js';
import { DEFAULT_HOST } from '../dashboard/listen.js';

export interface ServiceOptions {
  /** A fixed configuration (a CONFIG_FILE, the demo); or give `configSource`. */
  config?: ResolvedConfig;
  /** A live configuration (the cluster's CRDs): routes, partitions and clusters follow its changes. */
  configSource?: ConfigSource;
  /**
   * The service's own Kubernetes credentials (KUBECONFIG or in-cluster): used for source clusters whose
   * ClusterProvider names no kubeconfig Secret. Undefined outside a cluster.
   */
  kubeConfig?: KubeConfig;
  /**
   * Write each configuration object's status (conditions, last commit, backlog) through `kubeConfig`:
   * when the configuration comes from the cluster. Unset intervals: the status reporter's defaults.
   */
  reportStatus?: { intervalMs?: number; minIntervalMs?: number };
  /** Reconcile targets with their clusters (start, change, schedule, on demand). @defaultValue true */
  reconcile?: boolean;
  /** How often partitions no longer configured are checked for retirement (two empty checks in a row). @defaultValue 60000 */
  retireCheckMs?: number;
  /** Serve HTTPS (and ask for client certificates when a client CA is given). */
  tls?: TlsFiles;
  /** How often changed TLS files are picked up (renewed certificates). @defaultValue listen.ts's: 30000 */
  tlsReloadMs?: number;
  valkeyUrl: string;
  /** Credentials and TLS trust that VALKEY_URL does not carry (see queues/valkey-client-options.ts). */
  valkeyOptions?: ValkeyClientOptions;
  prefix: string;
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** The address both ports listen on (LISTEN_ADDRESS). @defaultValue DEFAULT_HOST (0.0.0.0) */
  host?: string;
  /**
   * Serve /admin (Bull Board, overview, replay and reconcile APIs) on this port only, with the same TLS
   * (ADMIN_PORT); `port` then answers 404 for /admin. 0 picks a free port. @defaultValue undefined: on `port`
   */
  adminPort?: number;
  logger: Logger;
  bodyLimitBytes: number;
  leaseTtlMs: number;
  batchSize: number;
  committer: GitAuthor;
  dashboardReadOnly: boolean;
  /** Basic auth for Bull Board; undefined = none. */
  dashboardCredentials?: DashboardCredentials;
  /** Basic auth of the operator role; undefined = none (with dashboardReadOnly=false the viewer operates, as before). */
  dashboardOperatorCredentials?: DashboardCredentials;
  /** Trust an SSO proxy's user/groups headers; undefined = never. */
  dashboardTrustedHeaders?: TrustedHeaderOptions;
  /** A name for this replica in leases and logs (REPLICA_ID). @defaultValue hostname-pid */
  replicaId?: string;
  /** How long the webhook waits for Valkey before answering 503. @defaultValue audit-webhook.ts's: 10000 */
  storeTimeoutMs?: number;
  /** Attempts of a write job that the remote refuses, before it is a dead letter. @defaultValue WRITE_ATTEMPTS's */
  writeAttempts?: number;
  /** First retry delay of such a job (doubling). @defaultValue WRITE_BACKOFF_MS's */
  writeBackoffMs?: number;
  /** Events waiting in the ingest queue above which batches get 429. @defaultValue INGEST_BACKLOG_LIMIT's */
  ingestBacklogLimit?: number;
  /** Share of Valkey's maxmemory above which batches get 503. @defaultValue VALKEY_MEMORY_HIGH_WATERMARK's */
  valkeyMemoryRatio?: number;
  /**
   * How long and how many finished jobs are kept, and the events streams' length; what is given is laid
   * over DEFAULT_RETENTION. Unset: today's job options (ingest keeps 50000 completed) and events streams of
   * DEFAULT_RETENTION.eventsMaxLen.
   */
  retention?: Partial<Retention>;
  /** Bounds on each event's object (refused at the webhook past them). @defaultValue DEFAULT_OBJECT_LIMITS */
  objectLimits?: ObjectLimits;
  /** Bytes of one cluster's events in flight before its batches get 429. @defaultValue DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES (128 MiB) */
  clusterInflightLimitBytes?: number;
  /** How often storage budget entries of finished jobs are swept. @defaultValue the budget sweeper's: 60000 */
  budgetSweepMs?: number;
  /** How long the router holds events for older ones that may still arrive. @defaultValue DEFAULT_REORDER_WINDOW_MS */
  reorderWindowMs?: number;
}

/** The options that get a default here. */
type Defaulted = 'reconcile' | 'retireCheckMs' | 'host' | 'replicaId' | 'writeAttempts' | 'writeBackoffMs' | 'ingestBacklogLimit' | 'valkeyMemoryRatio' | 'clusterInflightLimitBytes';

/** The options with their defaults in: what the service's parts are built from. */
export type ServiceSettings = Omit<ServiceOptions, 'config' | 'configSource' | 'retention' | Defaulted> &
  Required<Pick<ServiceOptions, Defaulted>> & {
    configSource: ConfigSource;
    /** The retention given, completed by DEFAULT_RETENTION; undefined when none was given. */
    retention: Retention | undefined;
  };

export function withDefaults(opts: ServiceOptions): ServiceSettings {
  const { config, configSource = config ? fixedConfigSource(config) : undefined, retention, ...rest } = opts;
  if (!configSource) throw new Error('startService needs config or configSource');
  return {
    ...rest,
    configSource,
    retention: retention && { ...DEFAULT_RETENTION, ...retention },
    reconcile: opts.reconcile ?? true,
    retireCheckMs: opts.retireCheckMs ?? 60_000,
    host: opts.host ?? DEFAULT_HOST,
    replicaId: opts.replicaId ?? `${hostname()}-${process.pid}`,
    writeAttempts: opts.writeAttempts ?? ENV_DEFAULTS.WRITE_ATTEMPTS,
    writeBackoffMs: opts.writeBackoffMs ?? ENV_DEFAULTS.WRITE_BACKOFF_MS,
    ingestBacklogLimit: opts.ingestBacklogLimit ?? ENV_DEFAULTS.INGEST_BACKLOG_LIMIT,
    valkeyMemoryRatio: opts.valkeyMemoryRatio ?? ENV_DEFAULTS.VALKEY_MEMORY_HIGH_WATERMARK,
    clusterInflightLimitBytes: opts.clusterInflightLimitBytes ?? DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES,
  };
}
