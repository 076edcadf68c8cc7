import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startEmbeddedValkey } from '../queues/embedded-valkey.js';
import { startService } from '../service.js';
import { parseConfig } from '../config/load-config.js';
import { demoConfigYaml } from '../config/demo-config.js';
import { AuditEventGenerator } from './audit-events.js';
import { initBare, commitCount } from './git.js';
const N = Number(process.argv[2] ?? 2000);
const root = await mkdtemp(join(tmpdir(), 'tl-'));
const v = await startEmbeddedValkey({ dataDir: join(root, 'v') });
const repo = join(root, 'r.git'); await initBare(repo);
const svc = await startService({ config: parseConfig(demoConfigYaml(repo)), valkeyUrl: v.url, prefix: 'tl', dataDir: join(root, 'd'), port: 0, host: '127.0.0.1', logger: pino({ level: process.env.LL ?? 'warn' }), bodyLimitBytes: 1e7, leaseTtlMs: 5000, batchSize: Number(process.env.BS ?? 500), committer: { name: 'x', email: 'x@y' }, dashboardReadOnly: true });
const wq = [...svc.writeQueues.values()][0]!;
const bodies = new AuditEventGenerator(36).lists(N, Number(process.env.PL ?? 500)).map((l) => JSON.stringify(l));
const t0 = performance.now();
let nx = 0;
await Promise.all(Array.from({ length: Number(process.env.C ?? 1) }, async () => { while (nx < bodies.length) { const b = bodies[nx++]!; const r = await fetch(`${svc.url}/audit-webhook/demo`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer demo-token' }, body: b }); await r.text(); } }));
console.log('posted', ((performance.now() - t0) / 1000).toFixed(2));
for (;;) {
  const i = await svc.ingestQueue.getJobCounts('completed', 'waiting', 'active');
  const w = await wq.getJobCounts('completed', 'waiting', 'active', 'failed');
  console.log(((performance.now() - t0) / 1000).toFixed(2), 'ingest', JSON.stringify(i), 'write', JSON.stringify(w));
  if ((w.completed ?? 0) >= N) break;
  if ((i.completed ?? 0) >= N && (w.waiting ?? 0) === 0 && (w.active ?? 0) === 0) break;
  await new Promise((r) => setTimeout(r, 500));
}
console.log('commits', await commitCount(repo));
const done = await wq.getCompleted(0, N);
const outcomes: Record<string, number> = {};
for (const j of done) { const r = j.returnvalue as { outcome: string; reason?: string }; const k = r.outcome + (r.reason ? ':' + r.reason : ''); outcomes[k] = (outcomes[k] ?? 0) + 1; }
console.log('outcomes', outcomes);
await svc.stop(); await v.stop();
