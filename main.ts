// `npm start`: reads the environment, starts an embedded Valkey when VALKEY_URL is not set, loads
// CONFIG_FILE (or the demo configuration), runs the service, and shuts it all down on SIGTERM/SIGINT.
import { pino } from 'pino';
import { loadDemoConfig, DEMO_CLUSTER, DEMO_TOKEN } from './config/demo-config.js';
import { readEnv } from './config/env.js';
import { loadConfigFile } from './config/load-config.js';
import { redactUrl } from './queues/connection.js';
import { startEmbeddedValkey, type EmbeddedValkey } from './queues/embedded-valkey.js';
import { startService } from './service.js';
import { join } from 'node:path';

async function main(): Promise<void> {
  const env = readEnv();
  const logger = pino({ level: env.LOG_LEVEL, redact: ['*.token', '*.password', 'req.headers.authorization'] });

  let embedded: EmbeddedValkey | undefined;
  let valkeyUrl = env.VALKEY_URL;
  if (!valkeyUrl) {
    embedded = await startEmbeddedValkey({ dataDir: join(env.DATA_DIR, 'valkey') });
    valkeyUrl = embedded.url;
    logger.info({ binary: embedded.binary, url: valkeyUrl, aof: join(env.DATA_DIR, 'valkey') }, 'VALKEY_URL is not set: started an embedded Valkey server with AOF persistence');
  } else {
    logger.info({ url: redactUrl(valkeyUrl) }, 'using Valkey');
  }

  let config;
  if (env.CONFIG_FILE) {
    config = await loadConfigFile(env.CONFIG_FILE);
    logger.info({ file: env.CONFIG_FILE, targets: config.targets.size, clusters: config.clusters.size }, 'configuration loaded');
  } else {
    const demo = await loadDemoConfig(env.DATA_DIR);
    config = demo.config;
    logger.info(
      { cluster: DEMO_CLUSTER, repository: demo.repoPath, webhook: `http://127.0.0.1:${env.PORT}/audit-webhook/${DEMO_CLUSTER}` },
      `CONFIG_FILE is not set: running the demo configuration (bearer token "${DEMO_TOKEN}"); see README "Quick start"`,
    );
  }

  const service = await startService({
    config,
    valkeyUrl,
    prefix: env.KEY_PREFIX,
    dataDir: env.DATA_DIR,
    port: env.PORT,
    logger,
    bodyLimitBytes: env.WEBHOOK_BODY_LIMIT_BYTES,
    leaseTtlMs: env.LEASE_TTL_MS,
    batchSize: env.WRITE_BATCH_SIZE,
    committer: { name: env.GIT_COMMITTER_NAME, email: env.GIT_COMMITTER_EMAIL },
    dashboardReadOnly: env.DASHBOARD_READ_ONLY,
    replicaId: env.REPLICA_ID,
  });
  logger.info({ dashboard: `${service.url}/admin/queues`, metrics: `${service.url}/metrics` }, 'ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took longer than 20 s; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    await service.stop();
    await embedded?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  // Configuration and environment errors already say everything: print them without a stack.
  const e = err as Error;
  const plain = ['ConfigError', 'EnvError', 'ValkeyBinaryMissingError'].includes(e.name);
  process.stderr.write(`gitops-reverser: ${plain ? e.message : (e.stack ?? String(e))}\n`);
  process.exit(1);
});
