// `npm start`: reads the environment and the configuration (CONFIG_FILE, or the demo configuration),
// starts an embedded Valkey when VALKEY_URL is not set, runs the service, and shuts it all down on
// SIGTERM/SIGINT. Whatever fails on the way, an embedded server it started is stopped again.
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { DEMO_CLUSTER, DEMO_TOKEN, loadDemoConfig } from './config/demo-config.js';
import { readEnv, type ServiceEnv } from './config/env.js';
import { loadConfigFile } from './config/load-config.js';
import { listenerUrl } from './dashboard/listen.js';
import { fixedConfigSource, type ConfigSource } from './config/sources/config-snapshot.js';
import { startKubeConfigSource } from './config/sources/kubernetes-source.js';
import { redactUrl } from './queues/connection.js';
import { valkeyClientOptionsFromEnv } from './queues/valkey-client-options.js';
import { startEmbeddedValkey, type EmbeddedValkey } from './queues/embedded-valkey.js';
import { startService, type RunningService } from './service.js';
import { DEFAULT_HOST } from './service/options.js';

/** How long SIGTERM may take before the process exits anyway. */
const SHUTDOWN_LIMIT_MS = 20_000;

let embedded: EmbeddedValkey | undefined;

/**
 * The service's own Kubernetes credentials: KUBECONFIG when set, else the Pod's service account; none
 * outside a cluster (client-node would otherwise fall back to http://localhost:8080).
 */
async function ownKubeConfig(env: ServiceEnv): Promise<KubeConfig | undefined> {
  if (!process.env.KUBECONFIG && !env.KUBERNETES_SERVICE_HOST && env.CONFIG_SOURCE !== 'kubernetes') return undefined;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

async function loadConfiguration(env: ServiceEnv, logger: Logger, kubeConfig: KubeConfig | undefined): Promise<ConfigSource> {
  if (env.CONFIG_SOURCE === 'kubernetes' && kubeConfig) {
    logger.info({ server: kubeConfig.getCurrentCluster()?.server }, 'reading the configuration from the cluster (gitopsreverser.io objects)');
    return startKubeConfigSource({ kubeConfig, logger, allowLocalRepositories: env.ALLOW_LOCAL_GIT_REPOSITORIES });
  }
  if (env.CONFIG_SOURCE === 'file' && env.CONFIG_FILE) {
    const config = await loadConfigFile(env.CONFIG_FILE);
    logger.info({ file: env.CONFIG_FILE, targets: config.targets.size, clusters: config.clusters.size }, 'configuration loaded');
    return fixedConfigSource(config);
  }
  const demo = await loadDemoConfig(env.DATA_DIR);
  logger.info(
    { cluster: DEMO_CLUSTER, repository: demo.repoPath, webhook: `${listenerUrl('http', env.LISTEN_ADDRESS ?? DEFAULT_HOST, env.PORT)}/audit-webhook/${DEMO_CLUSTER}` },
    `CONFIG_FILE is not set: running the demo configuration (bearer token "${DEMO_TOKEN}"); see README "Quick start"`,
  );
  return fixedConfigSource(demo.config);
}

async function main(): Promise<void> {
  const env = readEnv();
  const logger = pino({ level: env.LOG_LEVEL, redact: ['*.token', '*.password', 'req.headers.authorization'] });
  const valkeyOptions = await valkeyClientOptionsFromEnv(env);
  // Configuration first: a typo in it must not leave a Valkey server behind.
  const kubeConfig = await ownKubeConfig(env);
  const configSource = await loadConfiguration(env, logger, kubeConfig);

  let valkeyUrl = env.VALKEY_URL;
  if (!valkeyUrl) {
    embedded = await startEmbeddedValkey({ dataDir: join(env.DATA_DIR, 'valkey') });
    valkeyUrl = embedded.url;
    logger.info({ binary: embedded.binary, url: valkeyUrl, aof: join(env.DATA_DIR, 'valkey') }, 'VALKEY_URL is not set: started an embedded Valkey server with AOF persistence');
  } else {
    logger.info({ url: redactUrl(valkeyUrl) }, 'using Valkey');
  }

  const service: RunningService = await startService({
    configSource,
    kubeConfig,
    reportStatus: env.CONFIG_SOURCE === 'kubernetes' ? {} : undefined,
    tls: env.TLS_CERT_FILE && env.TLS_KEY_FILE ? { certFile: env.TLS_CERT_FILE, keyFile: env.TLS_KEY_FILE, clientCaFile: env.TLS_CLIENT_CA_FILE } : undefined,
    valkeyUrl,
    valkeyOptions,
    prefix: env.KEY_PREFIX,
    dataDir: env.DATA_DIR,
    port: env.PORT,
    host: env.LISTEN_ADDRESS,
    adminPort: env.ADMIN_PORT,
    logger,
    bodyLimitBytes: env.WEBHOOK_BODY_LIMIT_BYTES,
    leaseTtlMs: env.LEASE_TTL_MS,
    batchSize: env.WRITE_BATCH_SIZE,
    committer: { name: env.GIT_COMMITTER_NAME, email: env.GIT_COMMITTER_EMAIL },
    dashboardReadOnly: env.DASHBOARD_READ_ONLY,
    dashboardCredentials: env.DASHBOARD_USERNAME && env.DASHBOARD_PASSWORD ? { username: env.DASHBOARD_USERNAME, password: env.DASHBOARD_PASSWORD } : undefined,
    dashboardOperatorCredentials:
      env.DASHBOARD_OPERATOR_USERNAME && env.DASHBOARD_OPERATOR_PASSWORD ? { username: env.DASHBOARD_OPERATOR_USERNAME, password: env.DASHBOARD_OPERATOR_PASSWORD } : undefined,
    dashboardTrustedHeaders: env.DASHBOARD_TRUSTED_HEADERS
      ? { userHeader: env.DASHBOARD_USER_HEADER, groupsHeader: env.DASHBOARD_GROUPS_HEADER, operatorGroup: env.DASHBOARD_OPERATOR_GROUP }
      : undefined,
    replicaId: env.REPLICA_ID,
    ingestBacklogLimit: env.INGEST_BACKLOG_LIMIT,
    writeAttempts: env.WRITE_ATTEMPTS,
    writeBackoffMs: env.WRITE_BACKOFF_MS,
    valkeyMemoryRatio: env.VALKEY_MEMORY_HIGH_WATERMARK,
    retention: {
      completedSeconds: env.JOB_RETENTION_COMPLETED_SECONDS,
      completedCount: env.JOB_RETENTION_COMPLETED_COUNT,
      failedSeconds: env.JOB_RETENTION_FAILED_SECONDS,
      failedCount: env.JOB_RETENTION_FAILED_COUNT,
      eventsMaxLen: env.QUEUE_EVENTS_MAX_LEN,
    },
    objectLimits: { maxBytes: env.EVENT_MAX_OBJECT_BYTES, maxDepth: env.EVENT_MAX_DEPTH, maxValues: env.EVENT_MAX_VALUES },
    clusterInflightLimitBytes: env.CLUSTER_INFLIGHT_LIMIT_BYTES,
    reorderWindowMs: env.REORDER_WINDOW_MS,
  });
  logger.info({ dashboard: `${service.adminUrl}/admin/queues`, metrics: `${service.url}/metrics` }, 'ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error(`shutdown took longer than ${SHUTDOWN_LIMIT_MS / 1000} s; exiting`);
      embedded?.process.kill('SIGKILL');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS);
    force.unref();
    let code = 0;
    try {
      await service.stop();
    } catch (err) {
      logger.error({ err }, 'the service did not stop cleanly');
      code = 1;
    } finally {
      await embedded?.stop();
    }
    logger.info('stopped');
    process.exit(code);
  };
  // A library promise nobody awaits (client-node re-opening a watch after a normal end can reject there)
  // must not take the service down: say it, loudly, and go on; the informers restart themselves.
  process.on('unhandledRejection', (reason: unknown) => logger.error({ err: reason }, 'unhandled promise rejection'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch(async (err: unknown) => {
  await embedded?.stop().catch(() => undefined);
  // Configuration and environment errors already say everything: print them without a stack.
  const e = err as Error;
  const plain = ['ConfigError', 'EnvError', 'ValkeyBinaryMissingError', 'ConfigSourceError', 'ValkeyTlsCaError'].includes(e.name);
  process.stderr.write(`gitops-reverser: ${plain ? e.message : (e.stack ?? String(e))}\n`);
  process.exit(1);
});
