// A CONFIG_FILE is checked as kubectl's strict field validation checks an object: a field the schema does
// not know (a typo, a field of a newer version) is refused, named by object and field path, with the close
// known field where there is one, all problems of the file at once. Objects read from a cluster are not
// refused for one: their API server already pruned what its CRD does not know.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { demoConfigYaml } from '../../config/demo-config.js';
import { ConfigError, parseConfig } from '../../config/load-config.js';
import { SCHEMA_BY_KIND } from '../../config/resource-schemas.js';
import { parseKnownFields } from '../../config/schema-issues.js';

const V = 'apiVersion: gitopsreverser.io/v1alpha1';

/** The problems parseConfig reports for `text`; fails the test when it does not throw a ConfigError. */
function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError, parseConfig succeeded');
}

const SECRET = 'apiVersion: v1\nkind: Secret\nmetadata: { name: tok, namespace: ops }\nstringData: { token: t }\n';
const docs = (...parts: string[]) => parts.join('---\n');

describe('parseConfig: unknown fields', () => {
  it('refuses a typo in spec, naming object and field and the field meant', () => {
    const text = docs(
      SECRET,
      `${V}\nkind: ClusterProvider\nmetadata: { name: prod-eu }\nspec:\n  audit: { tokenSecretRef: { name: tok, namespace: ops, key: token } }\n  allowedNamespace: [shop]\n`,
    );
    expect(problemsOf(text)).toEqual(['document 2 (ClusterProvider prod-eu): spec.allowedNamespace: unknown field (did you mean allowedNamespaces?)']);
  });

  it('refuses typos at every depth: nested objects, list items, metadata, the top level', () => {
    const text = docs(
      SECRET,
      // spec.audit.tokenSecretRef.nmae (depth 4), spec.watch.enable (depth 3)
      `${V}\nkind: ClusterProvider\nmetadata: { name: c1 }\nspec:\n  audit: { tokenSecretRef: { nmae: tok, name: tok, namespace: ops, key: token } }\n  watch: { enable: true }\n`,
      // metadata.namepsace: without strictness the object would silently land in namespace "default"
      `${V}\nkind: GitProvider\nmetadata: { name: local, namepsace: ops }\nspec: { url: /srv/git/r.git, allowedBranches: ["*"] }\n`,
      // a field named by a prefix: spec.reconcileInterval
      `${V}\nkind: GitTarget\nmetadata: { name: t, namespace: ops }\nspec: { providerRef: { name: local }, branch: main, clusterProviderRef: { name: c1 }, reconcileInterval: 60 }\n`,
      // spec.rules[1].apiGroup, in the second item of a list
      `${V}\nkind: WatchRule\nmetadata: { name: w, namespace: ops }\nspec:\n  targetRef: { name: t }\n  rules:\n    - { operations: ["*"], apiGroups: [""], resources: [configmaps] }\n    - { operations: ["*"], apiGroup: [apps], apiGroups: [apps], resources: [deployments] }\n`,
      // a top-level typo: the spec it was meant to be is missing too
      `${V}\nkind: ClusterWatchRule\nmetadata: { name: cw }\nspce: { targetRef: { name: t, namespace: ops }, rules: [] }\n`,
      // a Secret's stringdata: its token would otherwise be missing without a word about why
      'apiVersion: v1\nkind: Secret\nmetadata: { name: other, namespace: ops }\nstringdata: { token: t }\n',
    );
    expect(problemsOf(text)).toEqual([
      'document 2 (ClusterProvider c1): spec.audit.tokenSecretRef.nmae: unknown field (did you mean name?)',
      'document 2 (ClusterProvider c1): spec.watch.enable: unknown field (did you mean enabled?)',
      'document 3 (GitProvider local): metadata.namepsace: unknown field (did you mean namespace?)',
      'document 4 (GitTarget ops/t): spec.reconcileInterval: unknown field (did you mean reconcileIntervalSeconds?)',
      'document 5 (WatchRule ops/w): spec.rules[1].apiGroup: unknown field (did you mean apiGroups?)',
      'document 6 (ClusterWatchRule cw): spec: Invalid input: expected object, received undefined',
      'document 6 (ClusterWatchRule cw): spce: unknown field (did you mean spec?)',
      'document 7 (Secret ops/other): stringdata: unknown field (did you mean stringData?)',
    ]);
  });

  it('refuses a field of a newer version, listing the fields this version knows there', () => {
    const text = docs(
      SECRET,
      `${V}\nkind: ClusterProvider\nmetadata: { name: c1 }\nspec:\n  audit: { tokenSecretRef: { name: tok, namespace: ops, key: token } }\n  excludedNamespaces: [kube-system]\n`,
    );
    expect(problemsOf(text)).toEqual([
      'document 2 (ClusterProvider c1): spec.excludedNamespaces: unknown field (known here: audit, allowedNamespaces, kubeConfigSecretRef, watch, qps, burst, rateLimit)',
    ]);
  });

  it('names every unknown field of one object, and lists them with the file’s other problems', () => {
    const text = docs(
      `${V}\nkind: ClusterProvider\nmetadata: { name: c1 }\nspec:\n  audit: { tokenSecretRef: { name: tok, namespace: ops, key: token } }\n  qsp: 5\n  brust: 10\n`,
      `${V}\nkind: GitProvider\nmetadata: { name: gh, namespace: ops }\nspec: { url: https://h/r.git, allowedBranches: [main], secretRef: { name: creds }, branch: main }\n`,
      `${V}\nkind: GitTarget\nmetadata: { name: t, namespace: ops }\nspec: { providerRef: { name: gh }, branch: main, clusterProviderRef: { name: c1 }, prune: Sometimes }\n`,
      // sound as written, but its Secret is missing: a problem of resolution, listed with the others
      `${V}\nkind: ClusterProvider\nmetadata: { name: c2 }\nspec: { audit: { tokenSecretRef: { name: missing, namespace: ops, key: token } } }\n`,
    );
    expect(problemsOf(text)).toEqual([
      'document 1 (ClusterProvider c1): spec.qsp: unknown field (did you mean qps?)',
      'document 1 (ClusterProvider c1): spec.brust: unknown field (did you mean burst?)',
      'document 2 (GitProvider ops/gh): spec.branch: unknown field (known here: url, secretRef, allowedBranches)',
      'document 3 (GitTarget ops/t): spec.prune: Invalid option: expected one of "Never"|"OnEvent"|"Always"',
      'ClusterProvider c2: spec.audit.tokenSecretRef: Secret ops/missing not found',
    ]);
  });

  it('accepts what kubectl accepts: an object exported from a cluster, with server metadata and status; a Secret’s type; a cluster-scoped object’s namespace', () => {
    const text = docs(
      `apiVersion: v1\nkind: Secret\ntype: Opaque\nimmutable: true\nmetadata: { name: tok, namespace: ops, labels: { app: x } }\nstringData: { token: t }\n`,
      `${V}
kind: ClusterProvider
metadata:
  name: c1
  namespace: ignored-as-the-api-server-ignores-it
  uid: 6a0f1c4e-0d3b-4f5e-9a7c-2b1d3e4f5a6b
  resourceVersion: "4711"
  generation: 3
  creationTimestamp: "2026-01-02T03:04:05Z"
  labels: { team: platform }
  annotations: { kubectl.kubernetes.io/last-applied-configuration: "{}" }
  finalizers: []
  managedFields:
    - { manager: kubectl, operation: Apply, apiVersion: ${V.slice('apiVersion: '.length)}, fieldsType: FieldsV1, fieldsV1: {} }
spec:
  audit: { tokenSecretRef: { name: tok, namespace: ops, key: token } }
status:
  observedGeneration: 3
  conditions: [{ type: Ready, status: "True", reason: Ready, message: ok, lastTransitionTime: "2026-01-02T03:04:05Z" }]
`,
    );
    const config = parseConfig(text);
    expect(config.clusters.get('c1')?.token).toBe('t');
  });

  it('still loads the sample and the demo configuration', async () => {
    expect(() => parseConfig(demoConfigYaml('/tmp/demo-remote.git'))).not.toThrow();
    expect(() => parseConfig(`${SECRET}`)).not.toThrow();
    const sample = await readFile('samples/config.yaml', 'utf8');
    expect([...parseConfig(sample, 'samples/config.yaml').targets.keys()]).toEqual(['platform/prod-eu']);
  });
});

describe('parseKnownFields: objects read from a cluster', () => {
  const live = {
    apiVersion: 'gitopsreverser.io/v1alpha1',
    kind: 'ClusterProvider',
    metadata: { name: 'c1', uid: 'u', resourceVersion: '12', generation: 2, managedFields: [{ manager: 'kubectl' }] },
    spec: { audit: { tokenSecretRef: { name: 'tok', namespace: 'ops', key: 'token' } }, qps: 5 },
    status: { conditions: [], watchedResources: 3 },
  };

  it('parses a live object with server metadata and status', () => {
    const parsed = parseKnownFields(SCHEMA_BY_KIND.ClusterProvider, live);
    expect(parsed.success && parsed.data.spec.qps).toBe(5);
  });

  it('ignores a field its CRD knows and this service does not (CRDs newer than the service: an upgrade, a rollback)', () => {
    const newer = { ...live, spec: { ...live.spec, excludedNamespaces: ['kube-system'], audit: { ...live.spec.audit, clientCertificate: { commonName: 'x', serial: 1 } } } };
    // The file path refuses the same object...
    expect(SCHEMA_BY_KIND.ClusterProvider.safeParse(newer).success).toBe(false);
    // ...the cluster path reads it without the fields it does not know, and does not change its input.
    const parsed = parseKnownFields(SCHEMA_BY_KIND.ClusterProvider, newer);
    if (!parsed.success) throw new Error(parsed.error.message);
    expect(parsed.data.spec).not.toHaveProperty('excludedNamespaces');
    expect(parsed.data.spec.audit?.clientCertificate).toEqual({ commonName: 'x' });
    expect(newer.spec).toHaveProperty('excludedNamespaces');
  });

  it('still reports every other problem', () => {
    const parsed = parseKnownFields(SCHEMA_BY_KIND.ClusterProvider, { ...live, spec: { qps: -1, extra: true } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.code}`)).toEqual(['spec.qps: too_small', 'spec: custom']);
  });
});
