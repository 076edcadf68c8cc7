// The files the README points newcomers at must keep working: the sample configuration, the demo
// configuration and the sample audit batch.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { demoConfigYaml, DEMO_CLUSTER, DEMO_TOKEN } from '../../config/demo-config.js';
import { loadConfigFile, parseConfig } from '../../config/load-config.js';
import { parseAuditPayload } from '../../core/audit-event-schema.js';
import { toIngestJob } from '../../workers/ingest/filter-audit-event.js';

describe('samples', () => {
  it('samples/config.yaml is a valid configuration', async () => {
    const config = await loadConfigFile('samples/config.yaml');
    expect([...config.targets.keys()]).toEqual(['platform/prod-eu']);
    expect(config.clusters.get('prod-eu')?.allowedNamespaces).toEqual(['shop', 'payments']);
  });

  it('the demo configuration is valid and uses the documented token', () => {
    const config = parseConfig(demoConfigYaml('/tmp/demo-remote.git'));
    expect(config.clusters.get(DEMO_CLUSTER)?.token).toBe(DEMO_TOKEN);
  });

  it('samples/audit-batch.json keeps five of its seven events', async () => {
    const parsed = parseAuditPayload(JSON.parse(await readFile('samples/audit-batch.json', 'utf8')));
    if (!parsed.ok) throw new Error(parsed.error);
    const kept = parsed.events.map((e) => toIngestJob(DEMO_CLUSTER, e, {})).filter((r) => r.keep);
    expect(parsed.events).toHaveLength(7);
    expect(kept).toHaveLength(5);
  });
});
