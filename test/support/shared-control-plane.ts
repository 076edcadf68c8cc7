// The one real control plane a test run shares (test/support/kube-control-plane.ts): the global setup
// starts it once, before any test file, and hands its kubeconfig to the test files through vitest's
// provide/inject; test files call sharedControlPlane() and work in namespaces of their own
// (createTestNamespaces). A test file that needs an audit webhook pointing at its own receiver starts a
// control plane of its own with startControlPlane() instead (a few seconds).
//
// It starts only when a selected test file calls sharedControlPlane(, startKubeTarget( or
// new ClusterServiceKit( (the kube-target.ts tests run on it): a run of unit tests on a two-core machine
// should not pay for an API server it never talks to. Once started, the chart's CRDs are applied to it, once
// per run. PodTemplates are served without a watch cache (UNCACHED_RESOURCE), so that a watch from a
// compacted resourceVersion is a real 410 Gone (with the cache, the API server answers from its own
// window and etcd's compaction does not show).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { applyChartCrds, obtainControlPlaneBinaries, startControlPlane, type ControlPlaneBinaries } from './kube-control-plane.js';

export interface SharedControlPlaneInfo {
  kubeconfigPath: string;
  server: string;
  /** etcd's client URL (compactEtcd). */
  etcdUrl: string;
  adminToken: string;
  /** For test files that start a control plane of their own: no second obtain.sh. */
  binaries: ControlPlaneBinaries;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared control plane, or why there is none. */
    kubeControlPlane: SharedControlPlaneInfo | { error: string };
  }
}

const MARKERS = ['sharedControlPlane(', 'startKubeTarget(', 'new ClusterServiceKit('];

/** The resource the shared API server serves without a watch cache: a watch from a compacted resourceVersion gets 410 Gone. */
export const UNCACHED_RESOURCE = 'podtemplates' as const;

/** The test files of this run, when vitest tells (its State API is experimental: undefined if it moved). */
function selectedFiles(project: TestProject): string[] | undefined {
  try {
    const paths = project.vitest.state.getPaths();
    return Array.isArray(paths) && paths.length > 0 ? paths : undefined;
  } catch {
    return undefined;
  }
}

function needsIt(file: string): boolean {
  try {
    const text = readFileSync(file, 'utf8');
    return MARKERS.some((m) => text.includes(m));
  } catch {
    return true;
  }
}

/** For the global setup: starts the shared control plane when needed; returns its teardown. */
export async function setupSharedControlPlane(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const files = selectedFiles(project);
  if (files && !files.some(needsIt)) {
    project.provide('kubeControlPlane', { error: `the shared control plane was not started: no test file of this run called ${MARKERS.join(' or ')} when the run began` });
    return undefined;
  }
  let binaries: ControlPlaneBinaries;
  try {
    binaries = obtainControlPlaneBinaries();
  } catch (err) {
    // Only the test files that need it fail, each with this message (it names what to install).
    project.provide('kubeControlPlane', { error: String(err instanceof Error ? err.message : err) });
    return undefined;
  }
  const started = performance.now();
  try {
    const cp = await startControlPlane({ binaries, extraApiserverArgs: [`--watch-cache-sizes=${UNCACHED_RESOURCE}#0`] });
    try {
      await applyChartCrds(cp.kubeconfigPath);
    } catch (err) {
      await cp.stop();
      throw err;
    }
    console.info(`kube-control-plane: shared etcd + kube-apiserver 1.20.2 at ${cp.server}, chart CRDs applied, ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    project.provide('kubeControlPlane', { kubeconfigPath: cp.kubeconfigPath, server: cp.server, etcdUrl: cp.etcdUrl, adminToken: cp.adminToken, binaries });
    return () => cp.stop();
  } catch (err) {
    project.provide('kubeControlPlane', { error: String(err instanceof Error ? err.message : err) });
    return undefined;
  }
}

export interface SharedControlPlane extends SharedControlPlaneInfo {
  kubeConfig: KubeConfig;
}

/** For test files: the run's shared control plane; throws why when there is none. */
export async function sharedControlPlane(): Promise<SharedControlPlane> {
  const provided = inject('kubeControlPlane');
  if ('error' in provided) throw new Error(provided.error);
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(provided.kubeconfigPath);
  return { ...provided, kubeConfig };
}
