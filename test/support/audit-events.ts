// Builds audit.k8s.io/v1 events the way a kube-apiserver sends them at RequestResponse level, with the
// noise (status, managedFields, uid, resourceVersion, timestamps, last-applied) that sanitizing removes.
import { randomUUID } from 'node:crypto';

export interface ObjectSpec {
  apiVersion: string;
  kind: string;
  resource: string;
  namespace?: string;
  name: string;
  /** The object's content beyond apiVersion/kind/metadata (spec, data, …). */
  body: Record<string, unknown>;
  labels?: Record<string, string>;
}

export type Verb = 'create' | 'update' | 'patch' | 'delete';

let rv = 1000;
export const nextResourceVersion = () => String(++rv);

function groupOf(apiVersion: string): { group: string; version: string } {
  const [a, b] = apiVersion.split('/');
  return b === undefined ? { group: '', version: a! } : { group: a!, version: b };
}

/** The object as the API server returns it, noise included. */
export function liveObject(spec: ObjectSpec, resourceVersion: string): Record<string, unknown> {
  return {
    apiVersion: spec.apiVersion,
    kind: spec.kind,
    metadata: {
      name: spec.name,
      ...(spec.namespace ? { namespace: spec.namespace } : {}),
      uid: `uid-${spec.namespace ?? '_'}-${spec.name}`,
      resourceVersion,
      generation: 3,
      creationTimestamp: '2026-11-25T09:00:00Z',
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', time: '2026-11-25T09:00:00Z' }],
      ...(spec.labels ? { labels: spec.labels } : {}),
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(spec.body) },
    },
    ...spec.body,
    status: { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

export interface AuditEventOptions {
  user: string;
  impersonatedUser?: string;
  auditID?: string;
  code?: number;
  dryRun?: boolean;
  subresource?: string;
  timestamp?: Date;
}

export function auditEvent(verb: Verb, spec: ObjectSpec, opts: AuditEventOptions): Record<string, unknown> & { auditID: string } {
  const { group, version } = groupOf(spec.apiVersion);
  const resourceVersion = nextResourceVersion();
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const nsPart = spec.namespace ? `/namespaces/${spec.namespace}` : '';
  const uri = `${base}${nsPart}/${spec.resource}${verb === 'create' ? '' : `/${spec.name}`}${opts.subresource ? `/${opts.subresource}` : ''}${opts.dryRun ? '?dryRun=All' : ''}`;
  const ts = (opts.timestamp ?? new Date()).toISOString().replace('Z', '000Z');
  const object = liveObject(spec, resourceVersion);
  const event: Record<string, unknown> & { auditID: string } = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    auditID: opts.auditID ?? randomUUID(),
    stage: 'ResponseComplete',
    requestURI: uri,
    verb,
    user: { username: opts.user, groups: ['system:authenticated'] },
    ...(opts.impersonatedUser ? { impersonatedUser: { username: opts.impersonatedUser } } : {}),
    sourceIPs: ['10.1.2.3'],
    userAgent: 'kubectl/v1.31.0 (linux/amd64)',
    objectRef: {
      resource: spec.resource,
      ...(spec.namespace ? { namespace: spec.namespace } : {}),
      name: spec.name,
      apiGroup: group,
      apiVersion: version,
      ...(opts.subresource ? { subresource: opts.subresource } : {}),
    },
    responseStatus: { metadata: {}, code: opts.code ?? (verb === 'create' ? 201 : 200) },
    requestReceivedTimestamp: ts,
    stageTimestamp: ts,
  };
  if (verb === 'patch') event.requestObject = { metadata: { labels: spec.labels ?? {} } };
  else if (verb !== 'delete') {
    // What the client sent: no status, and the resourceVersion it read (never the new one).
    const { status: _status, metadata, ...rest } = object as { status: unknown; metadata: Record<string, unknown> };
    event.requestObject = { ...rest, metadata: { ...metadata, resourceVersion: verb === 'create' ? undefined : String(Number(resourceVersion) - 1) } };
  }
  event.responseObject =
    verb === 'delete'
      ? { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: spec.name, kind: spec.resource } }
      : object;
  return event;
}

export function eventList(items: Record<string, unknown>[]): Record<string, unknown> {
  return { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items };
}
