// Renders the Helm chart for tests: with `helm` where it is on PATH, else with tools/helm-render (Go's
// text/template + sprig + helm's own functions, built offline from Debian's golang packages), the
// engine CI uses. Both give `helm template` output: documents with `# Source:` headers.
import { execFile, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import type { KubeObject } from './kube-schema.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHART_DIR = resolve(ROOT, 'charts/gitops-reverser');
const RENDERER_BUILD = resolve(ROOT, 'tools/helm-render/build.sh');
const RENDERER_BIN = resolve(ROOT, 'tools/helm-render/.bin/helm-render');

export interface RenderOptions {
  releaseName?: string;
  namespace?: string;
  valueFiles?: string[];
  set?: Record<string, string>;
  apiVersions?: string[];
  /** A file of objects `lookup` finds, as in the cluster of an upgrade (helm-render only: helm template has none). */
  clusterObjects?: string;
  /** `--kube-version`: `.Capabilities.KubeVersion`, checked against Chart.yaml's kubeVersion. @defaultValue the engine's own */
  kubeVersion?: string;
}

export interface RenderedChart {
  /** Every object, CRDs first, with the template it came from. */
  objects: { source: string; object: KubeObject }[];
  notes: string;
}

export class ChartRenderError extends Error {
  override name = 'ChartRenderError';
}

type Engine = { kind: 'helm' } | { kind: 'helm-render'; bin: string };
let engine: Promise<Engine> | undefined;

/** `helm` when installed; else the Go renderer, built once (build.sh rebuilds only when its sources changed). */
export function chartEngine(): Promise<Engine> {
  engine ??= (async (): Promise<Engine> => {
    if (spawnSync('helm', ['version', '--short'], { stdio: 'ignore' }).status === 0) return { kind: 'helm' };
    const built = spawnSync('bash', [RENDERER_BUILD, RENDERER_BIN], { encoding: 'utf8' });
    if (built.status !== 0) throw new ChartRenderError(`tools/helm-render could not be built (no helm on PATH either):\n${built.stderr}${built.stdout}`);
    return { kind: 'helm-render', bin: RENDERER_BIN };
  })();
  return engine;
}

function commonArgs(opts: RenderOptions): string[] {
  const args = ['--namespace', opts.namespace ?? 'gitops-reverser'];
  for (const file of opts.valueFiles ?? []) args.push('--values', resolve(CHART_DIR, file));
  for (const [key, value] of Object.entries(opts.set ?? {})) args.push('--set', `${key}=${value}`);
  for (const v of opts.apiVersions ?? []) args.push('--api-versions', v);
  if (opts.clusterObjects) args.push('--cluster-objects', opts.clusterObjects);
  if (opts.kubeVersion) args.push('--kube-version', opts.kubeVersion);
  return args;
}

async function exec(bin: string, args: string[]): Promise<string> {
  try {
    return (await run(bin, args, { maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ChartRenderError((e.stderr || e.message).trim());
  }
}

function parseManifests(text: string): { source: string; object: KubeObject }[] {
  const objects: { source: string; object: KubeObject }[] = [];
  for (const chunk of text.split(/^---[ \t]*$/m)) {
    const doc = parseDocument(chunk);
    if (doc.errors.length > 0) throw new ChartRenderError(`rendered YAML does not parse: ${doc.errors[0]?.message ?? ''}\n${chunk}`);
    const object = doc.toJS() as KubeObject | null;
    if (object === null) continue;
    objects.push({ source: /^# Source: (.+)$/m.exec(chunk)?.[1] ?? '', object });
  }
  return objects;
}

/** `helm template --include-crds` and the rendered NOTES.txt. */
export async function renderChart(opts: RenderOptions = {}): Promise<RenderedChart> {
  const e = await chartEngine();
  const release = opts.releaseName ?? 'gitops-reverser';
  if (e.kind === 'helm') {
    if (opts.clusterObjects) throw new ChartRenderError('clusterObjects needs tools/helm-render: helm template cannot look objects up');
    const manifests = await exec('helm', ['template', release, CHART_DIR, '--include-crds', ...commonArgs(opts)]);
    // `helm install` has no --kube-version (it asks the cluster); the notes do not depend on it.
    const dryRun = await exec('helm', ['install', release, CHART_DIR, '--dry-run=client', ...commonArgs({ ...opts, kubeVersion: undefined })]);
    return { objects: parseManifests(manifests), notes: dryRun.split(/^NOTES:$/m)[1]?.trim() ?? '' };
  }
  const args = ['--release-name', release, ...commonArgs(opts)];
  const manifests = await exec(e.bin, [...args, '--include-crds', CHART_DIR]);
  const notes = await exec(e.bin, [...args, '--print-notes', CHART_DIR]);
  return { objects: parseManifests(manifests), notes: notes.trim() };
}

/**
 * The values the templates saw (chart defaults coalesced with the files and --set), to validate against
 * values.schema.json as helm does before rendering. With helm itself, helm has already validated them.
 */
export async function computedValues(opts: RenderOptions = {}): Promise<Record<string, unknown> | undefined> {
  const e = await chartEngine();
  if (e.kind === 'helm') return undefined;
  const out = await exec(e.bin, ['--release-name', opts.releaseName ?? 'gitops-reverser', ...commonArgs(opts), '--print-values', CHART_DIR]);
  return JSON.parse(out) as Record<string, unknown>;
}
