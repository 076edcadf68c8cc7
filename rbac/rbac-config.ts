// Reads a CONFIG_FILE for RBAC generation. The file describes objects as they will be in the cluster, and
// there the Secrets usually are not in the same file (they come from a vault, sealed secrets, a separate
// apply): a referenced Secret the file lacks stands in as a placeholder, because RBAC needs its name, not
// its value. Everything else is checked as strictly as the service checks a CONFIG_FILE.
import { parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../config/load-config.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import { ClusterProviderSchema, GitProviderSchema, GitTargetSchema, type ClusterProvider, type GitProvider, type GitTarget } from '../config/resource-schemas.js';
import { secretReferences, type SecretReference } from '../config/secret-references.js';

export interface RbacConfig {
  config: ResolvedConfig;
  secrets: SecretReference[];
  /** Referenced Secrets the file does not hold (`namespace/name`), sorted. */
  placeholders: string[];
}

/** Throws ConfigError (config/load-config.ts) listing every problem of the file. */
export function readRbacConfig(text: string, source: string): RbacConfig {
  const clusterProviders: ClusterProvider[] = [];
  const gitProviders: GitProvider[] = [];
  const gitTargets: GitTarget[] = [];
  const present = new Set<string>();
  for (const doc of parseAllDocuments(text)) {
    // Unreadable or invalid documents are left to parseConfig below, which reports them properly.
    if (doc.errors.length > 0) continue;
    const value: unknown = doc.toJS();
    const obj = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (obj?.kind === 'Secret') present.add(`${String(obj.metadata?.namespace ?? 'default')}/${String(obj.metadata?.name)}`);
    const cp = ClusterProviderSchema.safeParse(value);
    if (cp.success) clusterProviders.push(cp.data);
    const gp = GitProviderSchema.safeParse(value);
    if (gp.success) gitProviders.push(gp.data);
    const gt = GitTargetSchema.safeParse(value);
    if (gt.success) gitTargets.push(gt.data);
  }
  const secrets = secretReferences({ ClusterProvider: clusterProviders, GitProvider: gitProviders, GitTarget: gitTargets });
  // The keys that hold an age identity (spec.encryption.sops.keySecretRef) take a well-formed placeholder identity.
  const ageKeys = new Set(secrets.filter((r) => r.usedBy.endsWith('spec.encryption.sops.keySecretRef')).map((r) => `${r.namespace}/${r.name}\0${r.key ?? ''}`));

  const missing = new Map<string, { namespace: string; name: string; keys: Set<string> }>();
  for (const ref of secrets) {
    const id = `${ref.namespace}/${ref.name}`;
    if (present.has(id)) continue;
    const entry = missing.get(id) ?? { namespace: ref.namespace, name: ref.name, keys: new Set<string>() };
    if (ref.key !== undefined) entry.keys.add(ref.key);
    missing.set(id, entry);
  }
  // Valid as a token and as a kubeconfig alike, whichever the key holds: RBAC needs the Secret's name only.
  const PLACEHOLDER =
    'apiVersion: v1\nkind: Config\nclusters: [{ name: p, cluster: { server: "https://placeholder.invalid" } }]\n' +
    'users: [{ name: p, user: { token: placeholder } }]\ncontexts: [{ name: p, context: { cluster: p, user: p } }]\ncurrent-context: p\n';
  // A valid X25519 identity that guards nothing (a placeholder; RBAC needs only the Secret's name).
  const AGE_PLACEHOLDER = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZ9K4CN\n';
  const placeholderDocs = [...missing.values()].map((m) =>
    stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: m.name, namespace: m.namespace },
      stringData: Object.fromEntries([...m.keys].map((k) => [k, ageKeys.has(`${m.namespace}/${m.name}\0${k}`) ? AGE_PLACEHOLDER : PLACEHOLDER])),
    }),
  );
  // Appended after the file's own documents, so the document numbers in its problems stay right.
  const withPlaceholders = [text.replace(/\s*$/, '\n'), ...placeholderDocs].join('---\n');
  return { config: parseConfig(withPlaceholders, source), secrets, placeholders: [...missing.keys()].sort() };
}
