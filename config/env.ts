// The environment variables of the service: the public configuration contract outside the CRDs.
// Parsed once at start; a bad value stops the service with a message naming the variable.
import { resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES, DEFAULT_PREFIX, DEFAULT_REORDER_WINDOW_MS, DEFAULT_RETENTION, DEFAULT_WRITE_ATTEMPTS, DEFAULT_WRITE_BACKOFF_MS } from './defaults.js';
import { DEFAULT_OBJECT_LIMITS } from '../core/object-limits.js';

/** Part of a Git ident: git refuses '<', '>' and line breaks in it. */
const gitIdent = z.string().min(1).regex(/^[^<>\n\r]+$/, "may not contain '<', '>' or line breaks");

const EnvSchema = z.object({
  /** redis:// or rediss:// URL; unset = start an embedded server. */
  VALKEY_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  /**
   * Valkey ACL user and password, kept out of the URL so they can come from a Secret as they are (no
   * percent-encoding). Not together with credentials in VALKEY_URL.
   */
  VALKEY_USERNAME: z.string().min(1).optional(),
  VALKEY_PASSWORD: z.string().min(1).optional(),
  /** PEM CA bundle that signs the Valkey server's certificate; needs a rediss:// VALKEY_URL. */
  VALKEY_TLS_CA_FILE: z.string().min(1).optional(),
  /** Multi-document YAML of configuration objects; unset = the demo configuration (or the cluster's, see CONFIG_SOURCE). */
  CONFIG_FILE: z.string().min(1).optional(),
  /**
   * Where the configuration comes from: `file` (CONFIG_FILE), `kubernetes` (the gitopsreverser.io objects of
   * the cluster, watched live, with KUBECONFIG or the in-cluster service account) or `demo`.
   * @defaultValue file when CONFIG_FILE is set, else kubernetes inside a Pod (KUBERNETES_SERVICE_HOST), else demo
   */
  CONFIG_SOURCE: z.enum(['file', 'kubernetes', 'demo']).optional(),
  /**
   * @defaultValue false — with CONFIG_SOURCE=kubernetes, whether a GitProvider may name a local path or
   * file:// URL (anyone who may write a GitProvider could otherwise reach the service's own files).
   */
  ALLOW_LOCAL_GIT_REPOSITORIES: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Set by Kubernetes in every Pod; read only to choose the default CONFIG_SOURCE. */
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  /** @defaultValue ./.data — embedded Valkey's AOF, Git mirrors, the demo repository. */
  DATA_DIR: z.string().min(1).default('./.data'),
  /** @defaultValue 8080 */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /**
   * The IP address PORT (and ADMIN_PORT) listen on. @defaultValue 0.0.0.0 — every IPv4 interface; `::` for
   * every interface, `127.0.0.1` for this host only.
   */
  LISTEN_ADDRESS: z.union([z.ipv4(), z.ipv6()], { error: 'an IP address to listen on (0.0.0.0: every IPv4 interface, ::: every interface)' }).optional(),
  /**
   * A port of its own for /admin (Bull Board, the overview, the replay and reconcile APIs), with the same TLS
   * settings; PORT then answers 404 for /admin, so a NetworkPolicy can keep the dashboard to an SSO proxy.
   * @defaultValue unset — /admin is served on PORT
   */
  ADMIN_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** @defaultValue gitops-reverser — queue names, Valkey keys and metric names share it. */
  KEY_PREFIX: z.string().regex(/^[A-Za-z0-9{}_-]+$/, 'letters, digits, "-", "_" and {hash tag} braces only').default(DEFAULT_PREFIX),
  /** @defaultValue 10485760 (10 MiB) — larger audit batches get 413. */
  WEBHOOK_BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(10 * 1024 * 1024),
  /**
   * @defaultValue 3145728 (3 MiB) — the largest object one event may carry, as JSON; a larger one is refused
   * (400 for that event). etcd stores no object over 1.5 MiB by default.
   */
  EVENT_MAX_OBJECT_BYTES: z.coerce.number().int().positive().default(DEFAULT_OBJECT_LIMITS.maxBytes),
  /** @defaultValue 100 — the deepest nesting of maps and arrays in an event's object. */
  EVENT_MAX_DEPTH: z.coerce.number().int().min(2).max(1000).default(DEFAULT_OBJECT_LIMITS.maxDepth),
  /** @defaultValue 200000 — map keys and array elements in an event's object, summed over the object. */
  EVENT_MAX_VALUES: z.coerce.number().int().positive().default(DEFAULT_OBJECT_LIMITS.maxValues),
  /**
   * @defaultValue 134217728 (128 MiB) — bytes of one cluster's events Valkey may hold in flight (stored, not
   * yet in Git); past it, that cluster's batches get 429 + Retry-After while the others go on.
   */
  CLUSTER_INFLIGHT_LIMIT_BYTES: z.coerce.number().int().positive().default(DEFAULT_CLUSTER_INFLIGHT_LIMIT_BYTES),
  /** @defaultValue 200000 — events waiting in the ingest queue above which batches get 429 + Retry-After. */
  INGEST_BACKLOG_LIMIT: z.coerce.number().int().positive().default(200_000),
  /** @defaultValue 0.9 — share of Valkey's maxmemory above which batches get 503 + Retry-After. */
  VALKEY_MEMORY_HIGH_WATERMARK: z.coerce.number().gt(0).max(1).default(0.9),
  /** @defaultValue 5 — attempts of a write the remote refuses before it becomes a dead letter. */
  WRITE_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(DEFAULT_WRITE_ATTEMPTS),
  /** @defaultValue 2000 — first retry delay of such a write, doubling each attempt. */
  WRITE_BACKOFF_MS: z.coerce.number().int().min(0).default(DEFAULT_WRITE_BACKOFF_MS),
  /** @defaultValue 5000 — how long a writer's partition lease lives without renewal. */
  LEASE_TTL_MS: z.coerce.number().int().min(500).default(5000),
  /**
   * @defaultValue 3600 — seconds a completed job is kept. Its jobId deduplicates a retried audit batch or
   * write only while it is kept: a shorter age shortens that window (the writer's checks cover the rest).
   */
  JOB_RETENTION_COMPLETED_SECONDS: z.coerce.number().int().min(0).default(DEFAULT_RETENTION.completedSeconds),
  /** @defaultValue 20000 — the most completed jobs kept per queue (the newest); a high rate shortens the dedup window too. */
  JOB_RETENTION_COMPLETED_COUNT: z.coerce.number().int().min(0).default(DEFAULT_RETENTION.completedCount),
  /** @defaultValue 604800 (7 days) — seconds a failed job (a dead letter, to read and replay) is kept. */
  JOB_RETENTION_FAILED_SECONDS: z.coerce.number().int().min(0).default(DEFAULT_RETENTION.failedSeconds),
  /** @defaultValue 10000 — the most failed jobs (dead letters) kept per queue (the newest). */
  JOB_RETENTION_FAILED_COUNT: z.coerce.number().int().min(0).default(DEFAULT_RETENTION.failedCount),
  /** @defaultValue 1000 — approximate length each queue's events stream is trimmed to. */
  QUEUE_EVENTS_MAX_LEN: z.coerce.number().int().min(1).default(DEFAULT_RETENTION.eventsMaxLen),
  /**
   * @defaultValue 2000 — how long the router holds an event for older changes of its cluster that may still
   * arrive (API servers send audit batches concurrently); 0 routes at once. Every change waits this long.
   */
  REORDER_WINDOW_MS: z.coerce.number().int().min(0).max(600_000).default(DEFAULT_REORDER_WINDOW_MS),
  /** @defaultValue 500 — the most events one push carries. */
  WRITE_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  /** @defaultValue "GitOps Reverser" / gitops-reverser@localhost — the committer; authors are Kubernetes users. */
  GIT_COMMITTER_NAME: gitIdent.default('GitOps Reverser'),
  GIT_COMMITTER_EMAIL: gitIdent.default('gitops-reverser@localhost'),
  /** @defaultValue true — Bull Board refuses retries, removals and cleans. */
  DASHBOARD_READ_ONLY: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** Basic-auth credentials for Bull Board at /admin/queues; unset = no authentication (put it behind a proxy). */
  DASHBOARD_USERNAME: z.string().min(1).optional(),
  DASHBOARD_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
  /** Basic-auth credentials of the operator (retry, promote, clean, replay, reconcile); unset = none. */
  DASHBOARD_OPERATOR_USERNAME: z.string().min(1).optional(),
  DASHBOARD_OPERATOR_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
  /** @defaultValue false — trust an SSO proxy's user and groups headers (only behind such a proxy). */
  DASHBOARD_TRUSTED_HEADERS: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  DASHBOARD_USER_HEADER: z.string().min(1).default('X-Forwarded-User'),
  DASHBOARD_GROUPS_HEADER: z.string().min(1).default('X-Forwarded-Groups'),
  /** Members of this group (from the proxy's groups header) are operators; unset: no proxy user is. */
  DASHBOARD_OPERATOR_GROUP: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** A name for this replica in leases and logs. @defaultValue hostname-pid */
  REPLICA_ID: z.string().min(1).optional(),
  /** PEM certificate (chain) and key: serve HTTPS instead of HTTP. Set both or neither. */
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  /**
   * PEM CA bundle: ask clients for a certificate and verify it against these CAs, for ClusterProviders
   * with spec.audit.clientCertificate. Clients without one still connect (token authentication). Needs TLS.
   */
  TLS_CLIENT_CA_FILE: z.string().min(1).optional(),
});

/**
 * Every variable's default, read from the schema above: where a service option has a variable, its
 * default is this one (service/options.ts), so no default is written twice.
 */
export const ENV_DEFAULTS = EnvSchema.parse({});

/** Every variable the service reads: the chart may set no other (a test checks it). */
export const ENV_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

export type ConfigSourceKind = 'file' | 'kubernetes' | 'demo';
export type ServiceEnv = Omit<z.infer<typeof EnvSchema>, 'CONFIG_SOURCE'> & { CONFIG_SOURCE: ConfigSourceKind };

function urlHasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

export class EnvError extends Error {
  override name = 'EnvError';
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): ServiceEnv {
  const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = EnvSchema.safeParse(defined);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`);
    throw new EnvError(`invalid environment:\n${lines.join('\n')}`);
  }
  if (Boolean(result.data.DASHBOARD_USERNAME) !== Boolean(result.data.DASHBOARD_PASSWORD)) {
    throw new EnvError('invalid environment:\n  - DASHBOARD_USERNAME and DASHBOARD_PASSWORD go together: set both or neither');
  }
  if (Boolean(result.data.DASHBOARD_OPERATOR_USERNAME) !== Boolean(result.data.DASHBOARD_OPERATOR_PASSWORD)) {
    throw new EnvError('invalid environment:\n  - DASHBOARD_OPERATOR_USERNAME and DASHBOARD_OPERATOR_PASSWORD go together: set both or neither');
  }
  const data = result.data;
  if (data.VALKEY_USERNAME && !data.VALKEY_PASSWORD) {
    throw new EnvError('invalid environment:\n  - VALKEY_USERNAME needs VALKEY_PASSWORD: an ACL user always authenticates with a password');
  }
  if ((data.VALKEY_USERNAME || data.VALKEY_PASSWORD) && data.VALKEY_URL && urlHasCredentials(data.VALKEY_URL)) {
    // iovalkey takes both from the URL when it holds either: the other variable would be silently dropped.
    throw new EnvError('invalid environment:\n  - VALKEY_USERNAME/VALKEY_PASSWORD and credentials in VALKEY_URL go apart: give them in one place');
  }
  if ((data.VALKEY_PASSWORD || data.VALKEY_TLS_CA_FILE) && !data.VALKEY_URL) {
    throw new EnvError('invalid environment:\n  - VALKEY_PASSWORD and VALKEY_TLS_CA_FILE need VALKEY_URL: the embedded Valkey has neither');
  }
  if (data.VALKEY_TLS_CA_FILE && !data.VALKEY_URL?.startsWith('rediss://')) {
    throw new EnvError('invalid environment:\n  - VALKEY_TLS_CA_FILE needs a rediss:// VALKEY_URL: TLS is chosen by the URL scheme');
  }
  if (Boolean(data.TLS_CERT_FILE) !== Boolean(data.TLS_KEY_FILE)) {
    throw new EnvError('invalid environment:\n  - TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither');
  }
  if (data.ADMIN_PORT !== undefined && data.ADMIN_PORT === data.PORT) {
    throw new EnvError(`invalid environment:\n  - ADMIN_PORT must differ from PORT (${data.PORT}): unset it to serve /admin on PORT`);
  }
  if (data.TLS_CLIENT_CA_FILE && !data.TLS_CERT_FILE) {
    throw new EnvError('invalid environment:\n  - TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE: client certificates are only asked for over HTTPS');
  }
  const source: ConfigSourceKind = data.CONFIG_SOURCE ?? (data.CONFIG_FILE ? 'file' : data.KUBERNETES_SERVICE_HOST ? 'kubernetes' : 'demo');
  if (source === 'file' && !data.CONFIG_FILE) throw new EnvError('invalid environment:\n  - CONFIG_SOURCE: file needs CONFIG_FILE');
  return { ...data, CONFIG_SOURCE: source, DATA_DIR: resolve(data.DATA_DIR) };
}
