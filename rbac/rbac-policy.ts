// Collects RBAC grants (scope, API group, resource, verbs, optionally object names) and renders them as
// merged, deterministically sorted PolicyRules: equal input gives byte-equal output, so a generated
// manifest diffs cleanly in review. A grant another grant already covers is left out (a Secret by name
// when all Secrets of its namespace are readable; a namespace grant that the cluster-wide one includes).

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  /** Only these objects; absent: every object of the resources. */
  resourceNames?: string[];
  verbs: string[];
}

/** '' is the cluster scope (ClusterRole); anything else a namespace (Role). */
export type Scope = string;
export const CLUSTER_SCOPE: Scope = '';

const SEP = '\u0000';

export class PermissionSet {
  /** scope, group, resource → verbs on every object. */
  private readonly all = new Map<string, Set<string>>();
  /** scope, group, resource, name → verbs on that object. */
  private readonly named = new Map<string, Set<string>>();

  grant(scope: Scope, group: string, resource: string, verbs: readonly string[], resourceName?: string): void {
    const map = resourceName === undefined ? this.all : this.named;
    const key = [scope, group, resource, ...(resourceName === undefined ? [] : [resourceName])].join(SEP);
    const set = map.get(key) ?? new Set<string>();
    for (const v of verbs) set.add(v);
    map.set(key, set);
  }

  /** The namespaces that have grants left after subsumption, sorted. */
  namespaces(): string[] {
    const out = new Set<string>();
    for (const ns of [...this.entries(this.all), ...this.entries(this.named)].map((e) => e.scope)) if (ns !== CLUSTER_SCOPE) out.add(ns);
    return [...out].filter((ns) => this.rules(ns).length > 0).sort();
  }

  rules(scope: Scope): PolicyRule[] {
    // Unrestricted grants: one rule per (group, verbs), listing its resources.
    const byGroupVerbs = new Map<string, { group: string; verbs: string[]; resources: string[] }>();
    for (const e of this.entries(this.all)) {
      if (e.scope !== scope) continue;
      const verbs = this.uncovered(scope, e.group, e.resource, e.verbs, false);
      if (verbs.length === 0) continue;
      const key = [e.group, ...verbs].join(SEP);
      const entry = byGroupVerbs.get(key) ?? { group: e.group, verbs, resources: [] };
      entry.resources.push(e.resource);
      byGroupVerbs.set(key, entry);
    }
    const rules: PolicyRule[] = [...byGroupVerbs.values()].map((r) => ({ apiGroups: [r.group], resources: r.resources.sort(), verbs: r.verbs }));
    // Grants by name: one rule per (group, resource, verbs), listing the names.
    const byResource = new Map<string, { group: string; resource: string; verbs: string[]; names: string[] }>();
    for (const e of this.entries(this.named)) {
      if (e.scope !== scope || e.name === undefined) continue;
      const verbs = this.uncovered(scope, e.group, e.resource, e.verbs, true);
      if (verbs.length === 0) continue;
      const key = [e.group, e.resource, ...verbs].join(SEP);
      const entry = byResource.get(key) ?? { group: e.group, resource: e.resource, verbs, names: [] };
      entry.names.push(e.name);
      byResource.set(key, entry);
    }
    for (const r of byResource.values()) rules.push({ apiGroups: [r.group], resources: [r.resource], resourceNames: r.names.sort(), verbs: r.verbs });
    return rules.sort(compareRules);
  }

  /** The verbs of a grant that no broader grant already gives: every object in scope, or the cluster scope. */
  private uncovered(scope: Scope, group: string, resource: string, verbs: ReadonlySet<string>, named: boolean): string[] {
    const broader = new Set<string>();
    if (named) for (const v of this.all.get([scope, group, resource].join(SEP)) ?? []) broader.add(v);
    if (scope !== CLUSTER_SCOPE) for (const v of this.all.get([CLUSTER_SCOPE, group, resource].join(SEP)) ?? []) broader.add(v);
    return [...verbs].filter((v) => !broader.has(v)).sort();
  }

  private entries(map: Map<string, Set<string>>): { scope: string; group: string; resource: string; name?: string; verbs: Set<string> }[] {
    return [...map.entries()].map(([key, verbs]) => {
      const [scope = '', group = '', resource = '', name] = key.split(SEP);
      return { scope, group, resource, name, verbs };
    });
  }
}

function compareRules(a: PolicyRule, b: PolicyRule): number {
  const key = (r: PolicyRule) => [r.apiGroups.join(','), r.resources.join(','), (r.resourceNames ?? []).join(','), r.verbs.join(',')];
  const [ka, kb] = [key(a), key(b)];
  for (let i = 0; i < ka.length; i++) {
    // Code-unit order, not the locale's: the same everywhere.
    if (ka[i]! !== kb[i]!) return ka[i]! < kb[i]! ? -1 : 1;
  }
  return 0;
}
