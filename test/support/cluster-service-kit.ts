// The scaffolding of the tests that run the service configured by the cluster (the run's control plane, or
// a cluster of your own with KUBECONFIG: kube-target.ts): the cluster, a Valkey, a bare remote, the objects
// a test file created and the running service. On the control plane the service sees the configuration
// objects of its own test file only (kube-target.ts scopes them). The test file calls open, startService
// and close from its beforeAll and afterAll.
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { startKubeConfigSource } from '../../config/sources/kubernetes-source.js';
import type { ServiceOptions } from '../../service.js';
import type { Obj } from './config-objects.js';
import { createBareRemote, waitFor } from './git-repos.js';
import { startKubeTarget, type KubeTarget } from './kube-target.js';
import { startTestService, type TestService } from './test-service.js';
import { startTestValkey, type TestValkey } from './valkey-server.js';

/** A condition in a resource's status, as the service reports it. */
export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

export class ClusterServiceKit {
  kube!: KubeTarget;
  valkey!: TestValkey;
  /** A bare repository for the test file's GitProviders. */
  remote!: string;
  service!: TestService;
  private readonly created: Obj[] = [];

  /** Starts the cluster and Valkey, and makes the bare remote. */
  async open(): Promise<void> {
    [this.kube, this.valkey] = await Promise.all([startKubeTarget(), startTestValkey()]);
    this.remote = await createBareRemote();
  }

  /** Creates `obj` in the cluster; close() removes it again (the newest first). */
  readonly create = async (obj: Obj): Promise<Obj> => {
    this.created.push(obj);
    return this.kube.create(obj);
  };

  /** Starts the service with its configuration from the cluster (`overrides` on top of the test service's options). */
  async startService(overrides: Partial<ServiceOptions> = {}): Promise<TestService> {
    const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const source = await startKubeConfigSource({ kubeConfig: this.kube.kubeConfig(), logger, allowLocalRepositories: true, debounceMs: 50 });
    this.service = await startTestService(this.valkey.url, () => '', { config: undefined, configSource: source, kubeConfig: this.kube.kubeConfig(), ...overrides });
    return this.service;
  }

  /** The condition of that type in `obj`'s status, as the cluster holds it now. */
  readonly condition = async (obj: Obj, type: string): Promise<Condition | undefined> =>
    ((await this.kube.read(obj)) as (Obj & { status?: { conditions?: Condition[] } }) | undefined)?.status?.conditions?.find((c) => c.type === type);

  /** Waits until `obj`'s condition of that type has that status; the condition then. */
  readonly waitForCondition = async (obj: Obj, type: string, status: string): Promise<Condition> => {
    let last: Condition | undefined;
    await waitFor(async () => (last = await this.condition(obj, type))?.status === status, `${obj.kind} ${obj.metadata?.name}: ${type}=${status} (last: ${JSON.stringify(last)})`, 15_000);
    return last!;
  };

  async close(): Promise<void> {
    await this.service?.close();
    for (const obj of this.created.reverse()) await this.kube?.remove(obj).catch(() => undefined);
    await this.kube?.stop();
    await this.valkey?.stop();
    if (this.remote) await rm(this.remote, { recursive: true, force: true });
  }
}
