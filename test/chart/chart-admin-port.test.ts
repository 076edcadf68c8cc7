// The chart's admin port (service.adminPort): /admin on a container and Service port of its own (ADMIN_PORT),
// which the NetworkPolicy opens only to the peers given for it (an SSO proxy's pods), while the main port
// keeps the webhook, metrics and probes for networkPolicy.ingressFrom. Off by default. And listenAddress
// (LISTEN_ADDRESS), e.g. "::" on IPv6-only clusters.
import { Ajv } from 'ajv';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEnv } from '../../config/env.js';
import { CHART_DIR, chartEngine, computedValues, renderChart, type RenderedChart } from '../support/chart-render.js';
import { builtInSchemaErrors } from '../support/kube-schema.js';

type Obj = Record<string, unknown>;
type Container = { env: { name: string; value?: string; valueFrom?: Obj }[]; ports: Obj[] } & Obj;

const withHelm = (await chartEngine()).kind === 'helm';
if (withHelm) console.info('rendering with helm: helm validates values against values.schema.json itself; the schema case is skipped');
const PROXY = { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'oauth2-proxy' } } };
const ADMIN = {
  'service.adminPort': '9090',
  'networkPolicy.enabled': 'true',
  'networkPolicy.ingressFrom[0].ipBlock.cidr': '10.0.0.0/24',
  'networkPolicy.adminIngressFrom[0].podSelector.matchLabels.app\\.kubernetes\\.io/name': 'oauth2-proxy',
};

const kind = (chart: RenderedChart, k: string) => chart.objects.map((o) => o.object as Obj & { kind: string }).filter((o) => o.kind === k);
const containerOf = (chart: RenderedChart) => ((((kind(chart, 'Deployment')[0]!.spec as Obj).template as Obj).spec as Obj).containers as Container[])[0]!;
const envOf = (chart: RenderedChart) => new Map(containerOf(chart).env.map((e) => [e.name, e.value]));

describe('chart: admin port and listen address', () => {
  it('off by default: one port for everything, no ADMIN_PORT, no LISTEN_ADDRESS', async () => {
    const chart = await renderChart();
    expect(containerOf(chart).ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(envOf(chart).has('ADMIN_PORT')).toBe(false);
    expect(envOf(chart).has('LISTEN_ADDRESS')).toBe(false);
    expect((kind(chart, 'Service')[0]!.spec as Obj).ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
  });

  it('service.adminPort: /admin on a container and Service port of its own, reachable only from the given peers', async () => {
    const chart = await renderChart({ set: ADMIN });
    const problems = [];
    for (const { object } of chart.objects.filter((o) => !o.object.apiVersion.startsWith('gitopsreverser.io/'))) problems.push(...(await builtInSchemaErrors(object)));
    expect(problems).toEqual([]);
    expect(containerOf(chart).ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'admin', containerPort: 8081, protocol: 'TCP' },
    ]);
    const env = envOf(chart);
    expect(env.get('ADMIN_PORT')).toBe('8081');
    // The service accepts what the chart sets.
    expect(readEnv({ ...Object.fromEntries([...env].map(([k, v]) => [k, v ?? 'from-a-secret'])), KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toMatchObject({ PORT: 8080, ADMIN_PORT: 8081 });
    const service = kind(chart, 'Service').find((s) => (s.metadata as Obj).name === 'gitops-reverser')!;
    expect((service.spec as Obj).ports).toEqual([
      { name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' },
      { name: 'admin', port: 9090, targetPort: 'admin', protocol: 'TCP' },
    ]);
    const policy = kind(chart, 'NetworkPolicy').find((p) => (p.metadata as Obj).name === 'gitops-reverser')!;
    expect((policy.spec as Obj).ingress).toEqual([
      { ports: [{ port: 'http', protocol: 'TCP' }], from: [{ ipBlock: { cidr: '10.0.0.0/24' } }] },
      { ports: [{ port: 'admin', protocol: 'TCP' }], from: [PROXY] },
    ]);
    // The probes stay on the main port.
    expect((containerOf(chart).readinessProbe as { httpGet: Obj }).httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(chart.notes).toContain('port-forward service/gitops-reverser 8081:9090');
  });

  it('without peers for the admin port, the NetworkPolicy admits none (kubectl port-forward still reaches it)', async () => {
    const chart = await renderChart({ set: { 'service.adminPort': '9090', 'networkPolicy.enabled': 'true' } });
    const policy = kind(chart, 'NetworkPolicy').find((p) => (p.metadata as Obj).name === 'gitops-reverser')!;
    expect((policy.spec as Obj).ingress).toEqual([{ ports: [{ port: 'http', protocol: 'TCP' }] }]);
  });

  it('listenAddress sets LISTEN_ADDRESS', async () => {
    const chart = await renderChart({ set: { listenAddress: '::' } });
    expect(envOf(chart).get('LISTEN_ADDRESS')).toBe('::');
  });

  it('refuses the admin port on the main port', async () => {
    await expect(renderChart({ set: { 'service.adminPort': '8080' } })).rejects.toThrow('service.adminPort must differ from service.port (8080)');
  });

  it.skipIf(withHelm)('values.schema.json knows the new values', async () => {
    const schema = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(await readFile(join(CHART_DIR, 'values.schema.json'), 'utf8')) as Obj);
    expect(schema(await computedValues({ set: ADMIN })) ? [] : schema.errors).toEqual([]);
    expect(schema(await computedValues({ set: { listenAddress: '::' } })) ? [] : schema.errors).toEqual([]);
    expect(schema(await computedValues({ set: { 'service.adminPort': '70000' } }))).toBe(false);
  });
});
