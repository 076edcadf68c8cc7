// The configuration as the cluster holds it: client-node informers on the five gitopsreverser.io kinds,
// resolved again (debounced) whenever one of them changes, with the Secrets they reference read by name.
// Every resolution becomes a ConfigSnapshot for the service (new routes, partitions, clusters) and the
// status reporter (each object's conditions). A broken object gets its problems and is left out; the
// others keep working: that is why the cluster path resolves leniently where a CONFIG_FILE is strict.
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { issuePath } from '../load-config.js';
import { emptyConfigObjects, resolveConfig, type ConfigObjects, type ConfigProblem } from '../resolve-config.js';
import { API_VERSION, SCHEMA_BY_KIND, type SecretObject } from '../resource-schemas.js';
import { parseKnownFields } from '../schema-issues.js';
import type { ConfigSnapshot, ConfigSource, ObservedObject, StatusKind } from './config-snapshot.js';
import { secretReferences } from '../secret-references.js';
import { apiErrorText } from '../../core/json-body.js';

type ClientNode = typeof import('@kubernetes/client-node');

/** The configuration kinds, with their plural names and scope. */
export const CONFIG_KINDS: readonly { kind: StatusKind; plural: string; namespaced: boolean }[] = [
  { kind: 'ClusterProvider', plural: 'clusterproviders', namespaced: false },
  { kind: 'GitProvider', plural: 'gitproviders', namespaced: true },
  { kind: 'GitTarget', plural: 'gittargets', namespaced: true },
  { kind: 'WatchRule', plural: 'watchrules', namespaced: true },
  { kind: 'ClusterWatchRule', plural: 'clusterwatchrules', namespaced: false },
];

const [GROUP, VERSION] = API_VERSION.split('/') as [string, string];

export interface KubeConfigSourceOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Quiet time after a change before resolving, so a `kubectl apply` of ten objects resolves once. @defaultValue 200 */
  debounceMs?: number;
  /** How often referenced Secrets are read again (a rotated token or kubeconfig). @defaultValue 30000 */
  secretRefreshMs?: number;
  /** Delay before an informer that failed (API server away, 403) starts again; doubles up to 30 s. @defaultValue 1000 */
  retryMs?: number;
  /** Attempts of the first list of each kind before start fails. @defaultValue 5 */
  initialAttempts?: number;
  /** Whether GitProviders may name local repository paths (ALLOW_LOCAL_GIT_REPOSITORIES). @defaultValue false */
  allowLocalRepositories?: boolean;
}

type Informer = import('@kubernetes/client-node').Informer<KubernetesObject> & import('@kubernetes/client-node').ObjectCache<KubernetesObject>;

/** Starts the informers and resolves once they have listed everything; rejects when the first list fails. */
export async function startKubeConfigSource(opts: KubeConfigSourceOptions): Promise<ConfigSource> {
  const k8s: ClientNode = await import('@kubernetes/client-node');
  const { kubeConfig: kc, logger } = opts;
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const listeners: ((s: ConfigSnapshot) => void)[] = [];
  const observers: ((s: ConfigSnapshot) => void)[] = [];
  const secretCache = new Map<string, { secret?: SecretObject; readAt: number }>();
  let stopped = false;
  let debounce: NodeJS.Timeout | undefined;
  let resolving: Promise<void> = Promise.resolve();

  const informers = CONFIG_KINDS.map(({ kind, plural }) => {
    const path = `/apis/${GROUP}/${VERSION}/${plural}`;
    const list = () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }) as Promise<KubernetesListObject<KubernetesObject>>;
    const informer: Informer = k8s.makeInformer(kc, path, list);
    const entry = { kind, plural, informer, lastError: undefined as unknown, restarting: false, restart: () => undefined as void };
    let retry = opts.retryMs ?? 1000;
    informer.on('change', () => {
      retry = opts.retryMs ?? 1000;
      schedule();
    });
    // client-node's informer stops on an error other than 410: start it again with backoff, so an API
    // server that was away (or an RBAC fix) heals without a restart. Meanwhile the last snapshot holds.
    // A start that fails again (it may also throw, preparing credentials) is retried the same way.
    const restart = () => {
      if (stopped || entry.restarting) return;
      entry.restarting = true;
      logger.warn({ kind, err: apiErrorText(entry.lastError), retryInMs: retry }, `watching ${kind} failed; starting again`);
      setTimeout(() => {
        entry.restarting = false;
        if (stopped) return;
        informer.start().catch((e: unknown) => {
          entry.lastError = e;
          restart();
        });
      }, retry).unref();
      retry = Math.min(retry * 2, 30_000);
    };
    informer.on('error', (err: unknown) => {
      entry.lastError = err;
      if (started) restart();
    });
    entry.restart = restart;
    return entry;
  });

  const readSecret = async (namespace: string, name: string, fresh: boolean): Promise<SecretObject | undefined> => {
    const key = `${namespace}/${name}`;
    const cached = secretCache.get(key);
    if (cached && !fresh) return cached.secret;
    let secret: SecretObject | undefined;
    try {
      const s = await core.readNamespacedSecret({ name, namespace });
      secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, data: s.data ?? {} };
    } catch (err) {
      if ((err as { code?: number }).code !== 404) {
        // A read that failed (timeout, 5xx, 403) says nothing about the Secret: keep what was read last,
        // so a blip of the API server never takes a working cluster or repository out of the configuration.
        logger.warn({ secret: key, err: apiErrorText(err), keeping: cached?.secret !== undefined }, `cannot read Secret ${key}`);
        // Nothing cached: not found for now, but not remembered as such: the next resolution reads it again.
        return cached?.secret;
      }
    }
    secretCache.set(key, { secret, readAt: Date.now() });
    return secret;
  };

  /** Parses every cached object; a schema failure becomes that object's InvalidSpec problem. */
  const collect = (): { objects: ConfigObjects; problems: ConfigProblem[]; observed: ObservedObject[] } => {
    const objects = emptyConfigObjects();
    const problems: ConfigProblem[] = [];
    const observed: ObservedObject[] = [];
    for (const { kind, informer } of informers) {
      // Oldest first (ties by name): of two targets claiming one folder, the one that was there first keeps it.
      const byAge = [...informer.list()].sort(
        (a, b) =>
          String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')) ||
          `${a.metadata?.namespace ?? ''}/${a.metadata?.name ?? ''}`.localeCompare(`${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`),
      );
      for (const raw of byAge) {
        const meta = raw.metadata ?? {};
        const name = meta.name ?? '';
        const key = meta.namespace ? `${meta.namespace}/${name}` : name;
        observed.push({ kind, key, name, namespace: meta.namespace, generation: meta.generation ?? 0, status: (raw as { status?: Record<string, unknown> }).status });
        const schema: z.ZodType = SCHEMA_BY_KIND[kind];
        // Unknown fields are ignored here (a CRD newer than this service), not refused as in a CONFIG_FILE.
        const parsed = parseKnownFields(schema, raw);
        if (!parsed.success) {
          for (const issue of parsed.error.issues) problems.push({ kind, key, field: issuePath(issue.path), reason: 'InvalidSpec', message: issue.message });
          continue;
        }
        (objects[kind] as unknown[]).push(parsed.data);
      }
    }
    return { objects, problems, observed };
  };

  const resolveNow = async (freshSecrets: boolean): Promise<ConfigSnapshot> => {
    const { objects, problems, observed } = collect();
    const refs = new Set(secretReferences(objects).map((r) => `${r.namespace}/${r.name}`));
    for (const key of secretCache.keys()) if (!refs.has(key)) secretCache.delete(key);
    const secrets = await Promise.all(
      [...refs].map((ref) => {
        const [namespace, name] = ref.split('/') as [string, string];
        return readSecret(namespace, name, freshSecrets);
      }),
    );
    objects.Secret = secrets.filter((s): s is SecretObject => s !== undefined);
    const resolved = resolveConfig(objects, { allowLocalRepositories: opts.allowLocalRepositories ?? false });
    return { config: resolved.config, problems: [...problems, ...resolved.problems], observed };
  };

  // Resolutions run one at a time, in order: a slow Secret read never lets an older snapshot win.
  const publish = (freshSecrets: boolean): Promise<void> => {
    resolving = resolving.then(async () => {
      if (stopped) return;
      try {
        const next = await resolveNow(freshSecrets);
        const configChanged = fingerprint(next, false) !== fingerprint(snapshot, false);
        const observedChanged = configChanged || fingerprint(next, true) !== fingerprint(snapshot, true);
        snapshot = next;
        if (configChanged) for (const l of listeners) l(next);
        else if (observedChanged) for (const l of observers) l(next);
      } catch (err) {
        logger.error({ err: apiErrorText(err) }, 'resolving the configuration failed; keeping the previous one');
      }
    });
    return resolving;
  };

  function schedule(): void {
    if (stopped || !started) return;
    clearTimeout(debounce);
    // Secrets are read again on the refresh timer (and when a new one is referenced), not for every change:
    // status updates of our own objects come through here too.
    debounce = setTimeout(() => void publish(false), opts.debounceMs ?? 200);
  }

  let started = false;
  try {
    await startAll(informers, opts.initialAttempts ?? 5, opts.retryMs ?? 1000);
  } catch (err) {
    stopped = true;
    await Promise.all(informers.map(({ informer }) => informer.stop()));
    throw err;
  }
  let snapshot = await resolveNow(true);
  started = true;
  // An informer whose watch failed while the others were still listing starts again now.
  for (const entry of informers) if (entry.lastError !== undefined) entry.restart();
  const refresh = setInterval(() => void publish(true), opts.secretRefreshMs ?? 30_000);
  refresh.unref();
  logger.info(
    { targets: snapshot.config.targets.size, clusters: snapshot.config.clusters.size, problems: snapshot.problems.length },
    'configuration loaded from the cluster',
  );

  return {
    current: () => snapshot,
    onChange: (listener) => listeners.push(listener),
    onObserved: (listener) => observers.push(listener),
    refresh: () => publish(false),
    async stop() {
      stopped = true;
      clearTimeout(debounce);
      clearInterval(refresh);
      await Promise.all(informers.map(({ informer }) => informer.stop()));
      await resolving;
    },
  };
}

/**
 * What makes two snapshots different: the configuration (Secret values too: a rotated token), and with
 * `withStatus` also the status the objects show (the reporter compares against it; a status change alone
 * must not make the service apply the configuration again).
 */
function fingerprint(s: ConfigSnapshot, withStatus: boolean): string {
  return JSON.stringify({
    clusters: [...s.config.clusters.values()],
    providers: [...s.config.providers.values()],
    targets: [...s.config.targets.values()],
    rules: s.config.rules,
    problems: s.problems,
    observed: s.observed.map((o) => (withStatus ? [o.kind, o.key, o.generation, o.status] : [o.kind, o.key, o.generation])),
  });
}

/**
 * Starts every informer and waits until each has listed its kind once: client-node's informer reports a
 * failed list through its error callback and still resolves start(), and going ahead without, say, the
 * GitTargets would route every event as unrouted. Retries with backoff, then fails naming the kind.
 */
async function startAll(informers: { kind: string; plural: string; informer: Informer; lastError: unknown }[], attempts: number, retryMs: number): Promise<void> {
  // One kind that cannot be listed ends the others' attempts too; all loops have ended before this returns,
  // so none starts an informer after the caller stopped them.
  let aborted = false;
  const results = await Promise.allSettled(
    informers.map(async (entry) => {
      for (let attempt = 1; ; attempt++) {
        if (aborted) return;
        entry.lastError = undefined;
        try {
          await entry.informer.start();
        } catch (err) {
          entry.lastError = err;
        }
        if (entry.lastError === undefined) return;
        if (attempt >= attempts) {
          aborted = true;
          throw new ConfigSourceError(`cannot list ${entry.plural}.${GROUP} (${entry.kind}) after ${attempts} attempts: ${apiErrorText(entry.lastError)}`);
        }
        await entry.informer.stop();
        await new Promise((r) => setTimeout(r, retryMs * 2 ** (attempt - 1)));
      }
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export class ConfigSourceError extends Error {
  override name = 'ConfigSourceError';
}

