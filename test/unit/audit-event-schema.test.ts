import { describe, expect, it } from 'vitest';
import { parseAuditPayload } from '../../core/audit-event-schema.js';

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'RequestResponse',
    auditID: '4d2c8b1e-7f3a-4c55-9a0e-2b1f6c9d8e7a',
    stage: 'ResponseComplete',
    requestURI: '/apis/apps/v1/namespaces/shop/deployments/web',
    verb: 'update',
    user: { username: 'alice@example.com', groups: ['system:authenticated'], extra: { 'scopes.example.com': ['a'] } },
    sourceIPs: ['10.0.0.7'],
    userAgent: 'kubectl/v1.31.0 (linux/amd64) kubernetes/abc',
    objectRef: { resource: 'deployments', namespace: 'shop', name: 'web', apiGroup: 'apps', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    responseObject: { kind: 'Deployment', apiVersion: 'apps/v1', metadata: { name: 'web', namespace: 'shop' } },
    requestReceivedTimestamp: '2025-11-25T12:00:00.000000Z',
    stageTimestamp: '2025-11-25T12:00:00.012345Z',
    annotations: { 'authorization.k8s.io/decision': 'allow' },
    ...overrides,
  };
}

function list(items: unknown[]): Record<string, unknown> {
  return { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items };
}

describe('parseAuditPayload', () => {
  it('accepts an EventList whose items omit kind/apiVersion, keeping unknown fields', () => {
    const { kind: _k, apiVersion: _a, ...bare } = event({ futureField: { x: 1 } });
    const result = parseAuditPayload(list([event(), bare]));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.events).toHaveLength(2);
    expect(result.events[1]?.futureField).toEqual({ x: 1 });
    expect(result.events[0]?.objectRef?.name).toBe('web');
  });

  it('accepts a single Event', () => {
    const result = parseAuditPayload(event());
    expect(result).toMatchObject({ ok: true, events: [{ auditID: '4d2c8b1e-7f3a-4c55-9a0e-2b1f6c9d8e7a' }] });
  });

  it('accepts an empty EventList', () => {
    expect(parseAuditPayload(list([]))).toEqual({ ok: true, events: [], indices: [], refused: [] });
  });

  it.each([
    [null, '(root): expected an object'],
    [[], '(root): expected an object'],
    ['{}', '(root): expected an object'],
    [{}, 'kind: expected "EventList" or "Event"'],
    [{ kind: 'Pod' }, 'kind: expected "EventList" or "Event"'],
    [{ kind: 'EventList', apiVersion: 'audit.k8s.io/v1beta1', items: [] }, 'apiVersion: expected "audit.k8s.io/v1"'],
    [{ kind: 'EventList', apiVersion: 'audit.k8s.io/v1' }, 'items: expected an array'],
  ])('rejects %j with %s', (body, error) => {
    expect(parseAuditPayload(body)).toEqual({ ok: false, error });
  });

  it('refuses each offending item of a list alone, naming its first offending field, and keeps the others', () => {
    const items = [event(), event({ auditID: 'b-1' }), event({ auditID: 'c-1' }), event({ auditID: 42 }), event({ auditID: 'e-1', verb: 7 })];
    const result = parseAuditPayload(list(items));
    expect(result).toMatchObject({
      ok: true,
      indices: [0, 1, 2],
      refused: [
        { index: 3, error: 'items[3].auditID: expected a string' },
        { index: 4, auditID: 'e-1', error: 'items[4].verb: expected a string' },
      ],
    });
    if (result.ok) expect(result.events.map((e) => e.auditID)).toEqual(['4d2c8b1e-7f3a-4c55-9a0e-2b1f6c9d8e7a', 'b-1', 'c-1']);
  });

  it('names nested fields', () => {
    expect(parseAuditPayload(event({ user: { groups: [] } }))).toEqual({ ok: false, error: 'user.username: expected a string' });
    expect(parseAuditPayload(list([event({ user: { username: 'a', groups: ['x', 3] } })]))).toMatchObject({
      ok: true,
      events: [],
      refused: [{ index: 0, error: 'items[0].user.groups[1]: expected a string' }],
    });
    expect(parseAuditPayload(event({ stage: 'Done' }))).toEqual({
      ok: false,
      error: 'stage: expected "RequestReceived" or "ResponseStarted" or "ResponseComplete" or "Panic"',
    });
  });

  it.each(['a:b', '', 'x'.repeat(129), 'abc/def', 'abc def'])('rejects auditID %j', (auditID) => {
    const result = parseAuditPayload(event({ auditID }));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/^auditID: expected 1-128 letters, digits or '-'/);
  });

  it('rejects an objectRef name that escapes the repository path', () => {
    const items = [event(), event(), event({ objectRef: { resource: 'configmaps', namespace: 'shop', name: '../../etc' } })];
    expect(parseAuditPayload(list(items))).toMatchObject({
      ok: true,
      refused: [{ index: 2, error: 'items[2].objectRef.name: "../../etc" would escape the repository path' }],
    });
  });

  it.each([
    ['name', '..'],
    ['name', '.'],
    ['name', 'a/b'],
    ['name', 'a\\b'],
    ['name', 'a\u0000b'],
    ['name', 'line\nbreak'],
    ['name', 'del\u007f'],
    ['namespace', '..'],
    ['resource', 'deployments/..'],
    ['apiGroup', '../apps'],
    ['apiVersion', 'v1/..'],
  ])('rejects objectRef.%s %j', (field, value) => {
    const result = parseAuditPayload(event({ objectRef: { resource: 'configmaps', [field]: value } }));
    expect(result).toEqual({ ok: false, error: `objectRef.${field}: ${JSON.stringify(value)} would escape the repository path` });
  });

  it('rejects names longer than 253 characters', () => {
    const result = parseAuditPayload(event({ objectRef: { resource: 'configmaps', name: 'a'.repeat(254) } }));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/^objectRef\.name: "a+"… is 254 characters, longer than 253$/);
    expect(parseAuditPayload(event({ objectRef: { resource: 'configmaps', name: 'a'.repeat(253) } })).ok).toBe(true);
  });

  it('rejects an escaping responseObject.metadata.name or namespace', () => {
    expect(parseAuditPayload(event({ responseObject: { kind: 'ConfigMap', metadata: { name: '../x' } } }))).toEqual({
      ok: false,
      error: 'responseObject.metadata.name: "../x" would escape the repository path',
    });
    expect(parseAuditPayload(list([event({ responseObject: { metadata: { name: 'ok', namespace: '..' } } })]))).toMatchObject({
      ok: true,
      refused: [{ index: 0, error: 'items[0].responseObject.metadata.namespace: ".." would escape the repository path' }],
    });
  });

  it.each([
    ['.', 'would escape the repository path'],
    ['..', 'would escape the repository path'],
    ['a\u0000b', 'would escape the repository path'],
    ['line\nbreak', 'would escape the repository path'],
    ['x'.repeat(400), 'is 400 characters, longer than 253'],
  ])('rejects a requestObject.metadata.name %j (the name a create without response is committed under)', (name, problem) => {
    const result = parseAuditPayload(event({ verb: 'create', requestObject: { kind: 'ConfigMap', metadata: { name } }, responseObject: undefined }));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/^requestObject\.metadata\.name: /);
    if (!result.ok) expect(result.error).toContain(problem);
  });

  it('rejects resource, group and version names not spelled as the API server spells them', () => {
    for (const [field, value] of [
      ['resource', 'Secrets'],
      ['resource', 'SECRETS'],
      ['apiGroup', 'Apps'],
      ['apiVersion', 'V1'],
      ['subresource', 'Scale'],
    ] as const) {
      const result = parseAuditPayload(event({ objectRef: { resource: 'configmaps', [field]: value } }));
      expect(result, `${field} ${value}`).toMatchObject({ ok: false });
      if (!result.ok) expect(result.error).toMatch(new RegExp(`^objectRef\\.${field}: expected a lower-case`));
    }
  });

  it('bounds usernames and requires RFC 3339 timestamps', () => {
    expect(parseAuditPayload(event({ user: { username: 'u'.repeat(1025) } })).ok).toBe(false);
    expect(parseAuditPayload(event({ user: { username: 'u'.repeat(1024) } })).ok).toBe(true);
    expect(parseAuditPayload(event({ stageTimestamp: 'yesterday' }))).toEqual({ ok: false, error: 'stageTimestamp: expected an RFC 3339 timestamp' });
    expect(parseAuditPayload(event({ requestReceivedTimestamp: '2025-11-25T12:00:00+01:00' })).ok).toBe(true);
  });

  it('allows names that are odd but harmless once encoded (percent signs, unicode, colons)', () => {
    for (const name of ['%2e%2e', 'caf\u00e9-\u{1F680}', 'system:controller:foo', '...', '.hidden']) {
      expect(parseAuditPayload(event({ objectRef: { resource: 'configmaps', name } })).ok, name).toBe(true);
    }
  });

  it('allows the core group as an empty apiGroup and a patch body that is a JSON array', () => {
    const result = parseAuditPayload(
      event({
        verb: 'patch',
        objectRef: { resource: 'configmaps', namespace: 'shop', name: 'cfg', apiGroup: '', apiVersion: 'v1' },
        requestObject: [{ op: 'replace', path: '/data/a', value: 'b' }],
      }),
    );
    expect(result.ok).toBe(true);
  });
});
