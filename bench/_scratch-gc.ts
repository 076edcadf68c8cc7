import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { startEmbeddedValkey } from '../queues/embedded-valkey.js';
import { openConnection } from '../queues/connection.js';
const N = 2000;
const root = await mkdtemp(join(tmpdir(), 'gc-'));
const v = await startEmbeddedValkey({ dataDir: join(root, 'v') });
const connection = openConnection(v.url);
for (const mode of ['plain', 'global1', 'plain+add', 'global1+add']) {
  const prefix = `gc-${mode.replace('+', '-')}`;
  const q = new Queue('q', { connection, prefix });
  const out = new Queue('out', { connection, prefix });
  if (mode.startsWith('global1')) await q.setGlobalConcurrency(1);
  await q.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'x', data: { i, pad: 'x'.repeat(2000) }, opts: { removeOnComplete: { count: 50000 } } })));
  const t = performance.now();
  const w = new Worker('q', async (job) => { if (mode.endsWith('+add')) await out.add('y', job.data, { jobId: `j${job.id}` }); return 1; }, { connection, prefix, concurrency: 1 });
  for (;;) { const c = await q.getJobCounts('completed'); if ((c.completed ?? 0) >= N) break; await new Promise((r) => setTimeout(r, 10)); }
  console.log(mode, 'jobs/s', (N / ((performance.now() - t) / 1000)).toFixed(0));
  await w.close(); await q.close(); await out.close();
}
await connection.quit(); await v.stop();
