// The identity of an event comes from one place: the API server's objectRef. The body (responseObject or
// requestObject) is what gets committed, so it must describe the same object: a body in `kube-system`
// under an objectRef that names `shop` (or no namespace at all) would otherwise be written under one folder
// while holding another's object, past a cluster's allowedNamespaces. A disagreement refuses the event
// (400 for it, counted); so does an objectRef whose namespace does not fit its type's scope.
import { canonicalGroup } from '../../core/redact-secret.js';
import type { ResourceScope } from '../../core/resource-scope.js';
import { isRecord } from '../../core/json.js';

export type IdentityRefusalReason = 'identity-mismatch' | 'scope-mismatch';

export interface IdentityRefusal {
  reason: IdentityRefusalReason;
  error: string;
}

export interface RefParts {
  resource: string;
  apiGroup?: string;
  namespace?: string;
  name?: string;
}

const quoted = (s: string) => JSON.stringify(s);

/** A Namespace is cluster-scoped, though the API server puts its own name into objectRef.namespace. */
export function isNamespaceRef(ref: Pick<RefParts, 'resource' | 'apiGroup'>): boolean {
  return ref.resource === 'namespaces' && canonicalGroup(ref.apiGroup) === '';
}

/**
 * Why the body `object` (when there is one) and the scope of the type (when known) disagree with `ref`, or
 * null when they agree. A body may leave namespace, name or apiVersion out; what it does say must match.
 */
export function identityRefusal(ref: RefParts, object: Record<string, unknown> | undefined, scope: ResourceScope | undefined): IdentityRefusal | null {
  const namespace = ref.namespace ?? '';
  const what = `${ref.apiGroup ? `${ref.apiGroup}/` : ''}${ref.resource}`;
  const isNamespace = isNamespaceRef(ref);
  if (!isNamespace && scope === 'namespaced' && namespace === '') {
    return { reason: 'scope-mismatch', error: `${what} is a namespaced type, but the event's objectRef names no namespace` };
  }
  if (!isNamespace && scope === 'cluster' && namespace !== '') {
    return { reason: 'scope-mismatch', error: `${what} is a cluster-scoped type, but the event's objectRef names namespace ${quoted(namespace)}` };
  }
  if (!object) return null;
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const bodyNamespace = typeof metadata.namespace === 'string' ? metadata.namespace : '';
  if (isNamespace ? bodyNamespace !== '' : bodyNamespace !== '' && bodyNamespace !== namespace) {
    const refSays = isNamespace || namespace === '' ? 'names no namespace' : `names namespace ${quoted(namespace)}`;
    return { reason: 'identity-mismatch', error: `the object's metadata.namespace is ${quoted(bodyNamespace)}, but the event's objectRef ${refSays}` };
  }
  const bodyName = typeof metadata.name === 'string' ? metadata.name : '';
  if (ref.name && bodyName !== '' && bodyName !== ref.name) {
    return { reason: 'identity-mismatch', error: `the object's metadata.name is ${quoted(bodyName)}, but the event's objectRef names ${quoted(ref.name)}` };
  }
  if (typeof object.apiVersion === 'string') {
    const slash = object.apiVersion.lastIndexOf('/');
    const bodyGroup = canonicalGroup(slash < 0 ? '' : object.apiVersion.slice(0, slash));
    if (bodyGroup !== canonicalGroup(ref.apiGroup)) {
      return {
        reason: 'identity-mismatch',
        error: `the object's apiVersion ${quoted(object.apiVersion)} is not of the API group ${quoted(canonicalGroup(ref.apiGroup))} the event's objectRef names`,
      };
    }
  }
  return null;
}
