// The API path that reads one object back, built from an audit event's objectRef: /api/v1/... for the
// core group, /apis/{group}/{version}/... otherwise. A `scale` event reads its parent: the Scale is a
// view of the parent's spec.replicas, and the parent is what Git keeps.

/** The parts of an audit objectRef that address one object. */
export interface ObjectRefLike {
  resource: string;
  namespace?: string | undefined;
  name?: string | undefined;
  apiGroup?: string | undefined;
  apiVersion?: string | undefined;
  subresource?: string | undefined;
}

/** Subresources whose parent object is what to read. */
const PARENT_SUBRESOURCES: ReadonlySet<string> = new Set(['scale']);

export type ObjectPath = { kind: 'path'; path: string } | { kind: 'unaddressable'; reason: string };

const segment = (s: string): string => encodeURIComponent(s);

/**
 * Whether the object lives outside any namespace. The API server files a Namespace under its own name
 * as objectRef.namespace (its URL is /api/v1/namespaces/{name}), but a Namespace is cluster-scoped.
 */
export function isClusterScoped(ref: ObjectRefLike): boolean {
  return !ref.namespace || ((ref.apiGroup ?? '') === '' && ref.resource === 'namespaces');
}

export function objectPath(ref: ObjectRefLike): ObjectPath {
  const what = `${ref.resource}${ref.subresource ? `/${ref.subresource}` : ''}`;
  if (ref.subresource && !PARENT_SUBRESOURCES.has(ref.subresource)) {
    return { kind: 'unaddressable', reason: `${what}: the ${ref.subresource} subresource is not an object that can be read back` };
  }
  if (!ref.name) return { kind: 'unaddressable', reason: `${what}: the event names no object` };
  if (!ref.apiVersion) return { kind: 'unaddressable', reason: `${what}: the event names no API version` };
  const group = ref.apiGroup ?? '';
  const base = group === '' ? `/api/${segment(ref.apiVersion)}` : `/apis/${segment(group)}/${segment(ref.apiVersion)}`;
  const scope = isClusterScoped(ref) ? '' : `/namespaces/${segment(ref.namespace ?? '')}`;
  return { kind: 'path', path: `${base}${scope}/${segment(ref.resource)}/${segment(ref.name)}` };
}
