// Resolves validated configuration objects (from a CONFIG_FILE or from the cluster's informers) into the
// configuration the service runs with, and says of every object what is wrong with it. Each problem is
// structured (object, field, reason, message): a file load prints them all and refuses to start; in a
// cluster each becomes that object's Ready=False condition while every sound object keeps working.
// A broken object is left out of the result, and so is whatever depends on it (a target of a broken
// provider), with a problem that points at the cause.
import picomatch from 'picomatch';
import { partitionOf } from '../queues/names.js';
import { hasURLCredentials, redactURL, remoteKind } from '../core/remote-url.js';
import { parseSecretKubeConfig } from './secret-kubeconfig.js';
import { ageRecipientProblem, recipientOfIdentity, singleIdentity } from '../core/sops/index.js';
import { UnsafePathError, validateBasePath } from '../core/path-layout.js';
import type { ClusterSource, ResolvedConfig, ResolvedGitProvider, ResolvedRule, ResolvedTarget, TargetEncryption } from './resolved-config.js';
import type { ClusterProvider, ClusterWatchRule, ConfigKind, GitProvider, GitTarget, ResourceRule, SecretObject, WatchRule } from './resource-schemas.js';

/** The configuration objects, each already valid against its schema. */
export interface ConfigObjects {
  ClusterProvider: ClusterProvider[];
  GitProvider: GitProvider[];
  GitTarget: GitTarget[];
  WatchRule: WatchRule[];
  ClusterWatchRule: ClusterWatchRule[];
  Secret: SecretObject[];
}

export const emptyConfigObjects = (): ConfigObjects => ({ ClusterProvider: [], GitProvider: [], GitTarget: [], WatchRule: [], ClusterWatchRule: [], Secret: [] });

/** Why an object is not Ready: the `reason` of its condition (CamelCase, as Kubernetes spells reasons). */
export type ProblemReason =
  | 'InvalidSpec'
  | 'Duplicate'
  | 'SecretNotFound'
  | 'SecretKeyNotFound'
  | 'SecretKeyEmpty'
  | 'CredentialsRequired'
  | 'GitProviderNotFound'
  | 'GitProviderNotReady'
  | 'ClusterProviderNotFound'
  | 'ClusterProviderNotReady'
  | 'InvalidBranch'
  | 'BranchNotAllowed'
  | 'InvalidPath'
  | 'PathOverlap'
  | 'GitTargetNotFound'
  | 'GitTargetNotReady'
  | 'NoMatchingResources'
  | 'PartitionConflict'
  | 'DuplicateCommonName'
  | 'LocalRepositoryRefused'
  | 'CredentialsInURL'
  | 'KnownHostsRequired'
  | 'InvalidKubeConfig'
  | 'InvalidAgeKey';

export interface ConfigProblem {
  kind: ConfigKind;
  /** `name` for cluster-scoped objects, `namespace/name` otherwise. */
  key: string;
  /** The field to fix, e.g. `spec.branch`; '' for the object as a whole. */
  field: string;
  reason: ProblemReason;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.kind} ${p.key}: ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

export interface ResolveResult {
  config: ResolvedConfig;
  problems: ConfigProblem[];
}

export function keyOf(obj: { metadata: { name: string; namespace?: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

function decodeSecret(secret: SecretObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  Object.assign(out, secret.stringData ?? {});
  return out;
}

export interface ResolveOptions {
  /**
   * Whether a GitProvider may name a local path or file:// URL. True for a CONFIG_FILE (its author runs the
   * service); false by default for configuration from the cluster, where anyone who may write a GitProvider
   * could otherwise read or overwrite the service's own files (other partitions' mirrors under DATA_DIR).
   */
  allowLocalRepositories?: boolean;
}

export function resolveConfig(objects: ConfigObjects, opts: ResolveOptions = {}): ResolveResult {
  const problems: ConfigProblem[] = [];
  const report = (kind: ConfigKind, key: string, field: string, reason: ProblemReason, message: string) =>
    problems.push({ kind, key, field, reason, message });
  const broken = (kind: ConfigKind, key: string) => problems.some((p) => p.kind === kind && p.key === key);

  // Of two objects with one key (possible only in a file), the first counts and the second is reported.
  const unique = <T extends { metadata: { name: string; namespace?: string } }>(kind: ConfigKind, items: T[]): T[] => {
    const seen = new Set<string>();
    return items.filter((item) => {
      const key = keyOf(item);
      if (seen.has(key)) {
        report(kind, key, '', 'Duplicate', 'defined more than once');
        return false;
      }
      seen.add(key);
      return true;
    });
  };
  const secrets = new Map(unique('Secret', objects.Secret).map((s) => [keyOf(s), decodeSecret(s)]));

  const clusters = new Map<string, ClusterSource>();
  const commonNames = new Map<string, string>();
  for (const cp of unique('ClusterProvider', objects.ClusterProvider)) {
    const name = cp.metadata.name;
    const cn = cp.spec.audit?.clientCertificate?.commonName;
    // One certificate subject, one cluster: otherwise either cluster's API server could send as the other.
    if (cn !== undefined && commonNames.has(cn)) {
      report('ClusterProvider', name, 'spec.audit.clientCertificate.commonName', 'DuplicateCommonName', `"${cn}" is already the certificate of ClusterProvider ${commonNames.get(cn)}`);
    } else if (cn !== undefined) commonNames.set(cn, name);
    const secretValue = (field: string, ref: { name: string; namespace: string; key: string }): string | undefined => {
      const secret = secrets.get(`${ref.namespace}/${ref.name}`);
      const value = secret?.[ref.key];
      if (!secret) report('ClusterProvider', name, field, 'SecretNotFound', `Secret ${ref.namespace}/${ref.name} not found`);
      else if (value === undefined) report('ClusterProvider', name, `${field}.key`, 'SecretKeyNotFound', `Secret ${ref.namespace}/${ref.name} has no key "${ref.key}"`);
      else if (value === '') report('ClusterProvider', name, `${field}.key`, 'SecretKeyEmpty', `key "${ref.key}" of Secret ${ref.namespace}/${ref.name} is empty`);
      return value || undefined;
    };
    const token = cp.spec.audit?.tokenSecretRef ? secretValue('spec.audit.tokenSecretRef', cp.spec.audit.tokenSecretRef) : undefined;
    const kubeConfig = cp.spec.kubeConfigSecretRef ? secretValue('spec.kubeConfigSecretRef', cp.spec.kubeConfigSecretRef) : undefined;
    // Untrusted input: only inline credentials are accepted (no exec, auth plugins or local files). Reported
    // after the check below on purpose: the cluster stays in for its audit webhook (events are accepted;
    // reads of objects fail and are kept as dead letters until the kubeconfig is fixed).
    const refusedKubeConfig = kubeConfig !== undefined ? parseSecretKubeConfig(kubeConfig) : undefined;
    if (broken('ClusterProvider', name)) continue;
    if (refusedKubeConfig && !refusedKubeConfig.ok) {
      report('ClusterProvider', name, 'spec.kubeConfigSecretRef', 'InvalidKubeConfig', `the kubeconfig ${refusedKubeConfig.problem}; audit events are still accepted, objects cannot be read back`);
    }
    clusters.set(name, {
      name,
      token,
      clientCommonName: cp.spec.audit?.clientCertificate?.commonName,
      allowedNamespaces: cp.spec.allowedNamespaces,
      kubeConfig,
      watch: cp.spec.watch?.enabled ? { auditJoinGraceMs: cp.spec.watch.auditJoinGraceSeconds * 1000 } : undefined,
      qps: cp.spec.qps,
      burst: cp.spec.burst,
      rateLimit: cp.spec.rateLimit,
    });
  }
  const clusterNames = new Set(objects.ClusterProvider.map((cp) => cp.metadata.name));

  const providers = new Map<string, ResolvedGitProvider>();
  for (const gp of unique('GitProvider', objects.GitProvider)) {
    const key = keyOf(gp);
    let credentials: Record<string, string> | undefined;
    if (gp.spec.secretRef) {
      credentials = secrets.get(`${gp.metadata.namespace}/${gp.spec.secretRef.name}`);
      if (!credentials) report('GitProvider', key, 'spec.secretRef', 'SecretNotFound', `Secret ${gp.metadata.namespace}/${gp.spec.secretRef.name} not found`);
    }
    if (hasURLCredentials(gp.spec.url)) {
      // They would reach log lines, the mirror's git config and status messages: only a Secret holds them.
      report(
        'GitProvider',
        key,
        'spec.url',
        'CredentialsInURL',
        `${redactURL(gp.spec.url)} carries credentials in the URL: move them to the Secret named by spec.secretRef (username and password, or bearerToken) and take them out of the URL`,
      );
    } else if (opts.allowLocalRepositories === false && remoteKind(gp.spec.url) === 'local') {
      report(
        'GitProvider',
        key,
        'spec.url',
        'LocalRepositoryRefused',
        'a local repository path is refused when the configuration comes from the cluster (it could reach the service\'s own files); use a remote URL, or set ALLOW_LOCAL_GIT_REPOSITORIES=true',
      );
    } else if (!gp.spec.secretRef && (/^(https?|ssh):\/\//.test(gp.spec.url) || /^[^/]+@[^:]+:/.test(gp.spec.url))) {
      // Public https remotes can be fetched anonymously but never pushed to: say so now, not at the first push.
      report('GitProvider', key, 'spec.secretRef', 'CredentialsRequired', `required for remote URL ${redactURL(gp.spec.url)}`);
    } else if (credentials && remoteKind(gp.spec.url) === 'ssh' && !credentials.known_hosts?.trim()) {
      // Without the host's key, any server that answers for the host would be trusted with every push.
      report(
        'GitProvider',
        key,
        'spec.secretRef',
        'KnownHostsRequired',
        `Secret ${gp.metadata.namespace}/${gp.spec.secretRef!.name} has no known_hosts: an ssh remote needs the Git host's public key ` +
          '(`ssh-keyscan HOST`, checked against the fingerprints the host publishes), or any server answering for it would receive every push',
      );
    }
    if (!broken('GitProvider', key)) providers.set(key, { key, url: gp.spec.url, credentials, allowedBranches: gp.spec.allowedBranches });
  }
  const declaredProviders = new Map(objects.GitProvider.map((gp) => [keyOf(gp), gp]));

  const targets = new Map<string, ResolvedTarget>();
  // Where each target would write, even one that is broken otherwise: two targets in one folder of a
  // branch are reported whatever else is wrong with them.
  const placements: Placement[] = [];
  const partitionOwners = new Map<string, ResolvedTarget>();
  for (const gt of unique('GitTarget', objects.GitTarget)) {
    const key = keyOf(gt);
    // Every problem of a target is reported, even when an earlier one already makes it unusable.
    const providerKey = `${gt.metadata.namespace}/${gt.spec.providerRef.name}`;
    const provider = providers.get(providerKey);
    const declared = declaredProviders.get(providerKey);
    if (!declared) {
      report('GitTarget', key, 'spec.providerRef.name', 'GitProviderNotFound', `GitProvider ${providerKey} not found`);
    } else if (!provider) {
      report('GitTarget', key, 'spec.providerRef.name', 'GitProviderNotReady', `GitProvider ${providerKey} is not ready (see its conditions)`);
    }
    const clusterName = gt.spec.clusterProviderRef.name;
    if (!clusterNames.has(clusterName)) {
      report('GitTarget', key, 'spec.clusterProviderRef.name', 'ClusterProviderNotFound', `ClusterProvider ${clusterName} not found`);
    } else if (!clusters.has(clusterName)) {
      report('GitTarget', key, 'spec.clusterProviderRef.name', 'ClusterProviderNotReady', `ClusterProvider ${clusterName} is not ready (see its conditions)`);
    }
    if (!isValidBranchName(gt.spec.branch)) {
      report('GitTarget', key, 'spec.branch', 'InvalidBranch', `"${gt.spec.branch}" is not a valid Git branch name`);
    } else if (declared && !declared.spec.allowedBranches.some((glob) => picomatch.isMatch(gt.spec.branch, glob))) {
      report(
        'GitTarget',
        key,
        'spec.branch',
        'BranchNotAllowed',
        `"${gt.spec.branch}" is not allowed by GitProvider ${providerKey} (allowedBranches: ${declared.spec.allowedBranches.join(', ')})`,
      );
    }
    let path: string | undefined;
    try {
      path = validateBasePath(gt.spec.path);
    } catch (err) {
      if (!(err instanceof UnsafePathError)) throw err;
      report('GitTarget', key, 'spec.path', 'InvalidPath', `${JSON.stringify(err.value)} ${err.reason}`);
    }
    const encryption = targetEncryption(gt, key, secrets, report);
    if (path === undefined) continue;
    if (declared) placements.push({ key, partitionId: partitionOf(declared.spec.url, gt.spec.branch).id, path });
    if (provider && !broken('GitTarget', key)) {
      const partition = partitionOf(provider.url, gt.spec.branch);
      // A partition is pushed with one set of credentials: a target may not join it through a GitProvider
      // with other credentials (another tenant's spelling of the same repository would borrow its token).
      const owner = partitionOwners.get(partition.id);
      if (owner && owner.provider.key !== provider.key && JSON.stringify(owner.provider.credentials ?? null) !== JSON.stringify(provider.credentials ?? null)) {
        report(
          'GitTarget',
          key,
          'spec.providerRef.name',
          'PartitionConflict',
          `repository ${redactURL(provider.url)} branch ${gt.spec.branch} is already written by GitTarget ${owner.key} through GitProvider ${owner.provider.key} with other credentials; use that GitProvider or another branch`,
        );
        continue;
      }
      const target: ResolvedTarget = {
        key,
        provider,
        branch: gt.spec.branch,
        path,
        clusterProvider: clusterName,
        partition,
        prune: gt.spec.prune,
        reconcileIntervalSeconds: gt.spec.reconcileIntervalSeconds,
        ...(encryption ? { encryption } : {}),
      };
      if (!owner) partitionOwners.set(partition.id, target);
      targets.set(key, target);
    }
  }
  for (const [mine, other] of overlappingPaths(placements)) {
    report('GitTarget', mine.key, 'spec.path', 'PathOverlap', `"${mine.path || '.'}" overlaps GitTarget ${other.key} ("${other.path || '.'}") on the same repository and branch`);
    targets.delete(mine.key);
  }

  const declaredTargets = new Set(objects.GitTarget.map(keyOf));
  const rules: ResolvedRule[] = [];
  const addRule = (kind: 'WatchRule' | 'ClusterWatchRule', key: string, field: string, targetKey: string, namespace: string | undefined, list: ResourceRule[]) => {
    // A broken target is reported once, as itself; the rule says only that it waits for it.
    if (!declaredTargets.has(targetKey)) report(kind, key, field, 'GitTargetNotFound', `GitTarget ${targetKey} not found`);
    else if (!targets.has(targetKey)) report(kind, key, field, 'GitTargetNotReady', `GitTarget ${targetKey} is not ready (see its conditions)`);
    rules.push({ source: `${kind} ${key}`, kind, key, namespace, targetKey, rules: list });
  };
  for (const wr of unique('WatchRule', objects.WatchRule)) {
    addRule('WatchRule', keyOf(wr), 'spec.targetRef.name', `${wr.metadata.namespace}/${wr.spec.targetRef.name}`, wr.metadata.namespace, wr.spec.rules);
  }
  for (const cwr of unique('ClusterWatchRule', objects.ClusterWatchRule)) {
    addRule('ClusterWatchRule', keyOf(cwr), 'spec.targetRef', `${cwr.spec.targetRef.namespace}/${cwr.spec.targetRef.name}`, undefined, cwr.spec.rules);
  }

  const partitions: ResolvedConfig['partitions'] = new Map();
  for (const t of targets.values()) partitions.set(t.partition.id, { partition: t.partition, credentials: t.provider.credentials });
  return { config: { clusters, providers, targets, rules, partitions }, problems };
}

/**
 * A GitTarget's spec.encryption resolved: its key Secret read (in the target's own namespace, like a
 * GitProvider's), the identity and every recipient checked. Undefined when it has none or a problem was
 * reported (the target is then left out: writing REDACTED values where the owner asked for restorable ones
 * would lose them silently).
 */
function targetEncryption(
  gt: GitTarget,
  key: string,
  secrets: ReadonlyMap<string, Record<string, string>>,
  report: (kind: ConfigKind, key: string, field: string, reason: ProblemReason, message: string) => void,
): TargetEncryption | undefined {
  const sops = gt.spec.encryption?.sops;
  if (!sops) return undefined;
  let sound = true;
  const recipients: string[] = [];
  sops.ageRecipients.forEach((recipient, i) => {
    const problem = ageRecipientProblem(recipient);
    if (problem) {
      sound = false;
      report('GitTarget', key, `spec.encryption.sops.ageRecipients[${i}]`, 'InvalidAgeKey', `${JSON.stringify(recipient.slice(0, 100))} ${problem}`);
    } else if (!recipients.includes(recipient)) recipients.push(recipient);
  });
  const ref = sops.keySecretRef;
  const where = `Secret ${gt.metadata.namespace}/${ref.name}`;
  const secret = secrets.get(`${gt.metadata.namespace}/${ref.name}`);
  const text = secret?.[ref.key];
  if (!secret) {
    report('GitTarget', key, 'spec.encryption.sops.keySecretRef', 'SecretNotFound', `${where} not found`);
    return undefined;
  }
  if (text === undefined) {
    report('GitTarget', key, 'spec.encryption.sops.keySecretRef.key', 'SecretKeyNotFound', `${where} has no key "${ref.key}"`);
    return undefined;
  }
  if (text.trim() === '') {
    report('GitTarget', key, 'spec.encryption.sops.keySecretRef.key', 'SecretKeyEmpty', `key "${ref.key}" of ${where} is empty`);
    return undefined;
  }
  // The messages describe the key's shape only: a Secret's value never reaches a condition or a log line.
  const single = singleIdentity(text);
  const derived = single.ok ? recipientOfIdentity(single.identity) : single;
  if (!single.ok || !derived.ok) {
    report('GitTarget', key, 'spec.encryption.sops.keySecretRef.key', 'InvalidAgeKey', `key "${ref.key}" of ${where} ${derived.ok ? '' : derived.problem}`);
    return undefined;
  }
  if (!sound) return undefined;
  return {
    identity: single.identity,
    identityRecipient: derived.recipient,
    recipients: recipients.includes(derived.recipient) ? recipients : [...recipients, derived.recipient],
  };
}

/**
 * The recipients the webhook seals Secret values for: those of the service identities of every target
 * with encryption, deduplicated and sorted. Empty: no target encrypts, and values are REDACTED.
 */
export function sealRecipients(config: Pick<ResolvedConfig, 'targets'>): string[] {
  const all = new Set<string>();
  for (const t of config.targets.values()) if (t.encryption) all.add(t.encryption.identityRecipient);
  return [...all].sort();
}

/** sealRecipients of the configuration in force, computed again only when a new one is in force. */
export function sealRecipientsInForce(config: () => ResolvedConfig): () => readonly string[] {
  let seen: ResolvedConfig | undefined;
  let recipients: string[] = [];
  return () => {
    const current = config();
    if (current !== seen) [seen, recipients] = [current, sealRecipients(current)];
    return recipients;
  };
}

/**
 * The rules that select nothing their target's cluster serves (a typo in a resource name, a CRD not
 * installed): `resourcesOf` gives a cluster's resources from API discovery as `group/resource` ('' group
 * for core), or undefined while unknown (nothing is reported then).
 */
export function rulesSelectingNothing(config: ResolvedConfig, resourcesOf: (cluster: string) => ReadonlySet<string> | undefined): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const rule of config.rules) {
    const target = config.targets.get(rule.targetKey);
    const known = target ? resourcesOf(target.clusterProvider) : undefined;
    if (!target || !known) continue;
    rule.rules.forEach((r, i) => {
      if (selectsAny(r, known)) return;
      problems.push({
        kind: rule.kind,
        key: rule.key,
        field: `spec.rules[${i}]`,
        reason: 'NoMatchingResources',
        message: `no resource of cluster ${target.clusterProvider} matches apiGroups [${r.apiGroups.map((g) => JSON.stringify(g)).join(', ')}] and resources [${r.resources.join(', ')}]: use plural resource names as \`kubectl api-resources\` lists them`,
      });
    });
  }
  return problems;
}

/** Whether a rule selects at least one of the `group/resource` names a cluster serves. */
function selectsAny(rule: ResourceRule, known: ReadonlySet<string>): boolean {
  const anyGroup = rule.apiGroups.includes('*');
  const anyResource = rule.resources.includes('*');
  for (const gr of known) {
    const slash = gr.indexOf('/');
    const group = gr.slice(0, slash);
    const resource = gr.slice(slash + 1);
    if ((anyGroup || rule.apiGroups.includes(group)) && (anyResource || rule.resources.includes(resource))) return true;
  }
  return false;
}

interface Placement {
  key: string;
  partitionId: string;
  path: string;
}

/** Targets that write into a folder of one branch that an earlier target already writes to; each with that earlier one. */
function overlappingPaths(list: Placement[]): [Placement, Placement][] {
  const out: [Placement, Placement][] = [];
  const inside = (x: string, y: string) => x === y || x === '' || y.startsWith(`${x}/`);
  for (let j = 1; j < list.length; j++) {
    const b = list[j]!;
    const a = list.slice(0, j).find((a) => a.partitionId === b.partitionId && (inside(a.path, b.path) || inside(b.path, a.path)));
    if (a) out.push([b, a]);
  }
  return out;
}

/** The rules of `git check-ref-format --branch`, without starting a process. */
export function isValidBranchName(branch: string): boolean {
  if (branch.startsWith('-') || branch.startsWith('/') || branch.endsWith('/') || branch.endsWith('.')) return false;
  if (branch.includes('..') || branch.includes('//') || branch.includes('@{') || branch === '@' || branch === 'HEAD') return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(branch)) return false;
  return branch.split('/').every((part) => part.length > 0 && !part.startsWith('.') && !part.endsWith('.lock'));
}
