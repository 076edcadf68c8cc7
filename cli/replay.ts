// `npm run replay -- --queue <name> [--job <id> ...]`: replays dead letters (failed jobs) of one queue,
// all of them or the ones named. Uses VALKEY_URL (with VALKEY_USERNAME, VALKEY_PASSWORD,
// VALKEY_TLS_CA_FILE) and KEY_PREFIX like the service.
//   npm run replay -- --queue write-cluster-state-main-2b0f5489634d --job prod-eu_5f1c…_platform.prod-eu
import { Queue } from 'bullmq';
import { parseArgs } from 'node:util';
import { readEnv } from '../config/env.js';
import { openConnection, redactUrl } from '../queues/connection.js';
import { replayFailed } from '../queues/replay-failed.js';
import { valkeyClientOptionsFromEnv } from '../queues/valkey-client-options.js';

const { values } = parseArgs({ options: { queue: { type: 'string' }, job: { type: 'string', multiple: true, default: [] } } });
const env = readEnv();
if (!values.queue || !env.VALKEY_URL) {
  process.stderr.write('usage: VALKEY_URL=redis://… npm run replay -- --queue <queue name> [--job <id>]…\n(the queue names are in Bull Board and in GET /admin/queues/api/queues)\n');
  process.exit(2);
}
const valkeyOptions = await valkeyClientOptionsFromEnv(env);
const connection = openConnection(env.VALKEY_URL, { ...valkeyOptions, maxRetriesPerRequest: 3 });
// skipMetasUpdate: the queue's meta (its events streams' QUEUE_EVENTS_MAX_LEN) is the service's to set.
const queue = new Queue(values.queue, { connection, prefix: env.KEY_PREFIX, skipMetasUpdate: true });
try {
  const result = await replayFailed(queue, values.job);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stderr.write(`replayed ${result.replayed.length} job(s) of ${values.queue} on ${redactUrl(env.VALKEY_URL)}\n`);
} finally {
  await queue.close();
  await connection.quit();
}
