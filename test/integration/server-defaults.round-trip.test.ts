// The files are safe to apply: every object recorded from a real kube-apiserver 1.20.2
// (test/fixtures/kube-objects) is created again on the run's real API server from its file (what
// normalize writes, with the server's defaults taken out by core/server-defaults.ts), and the
// API server stores exactly the object it stored for what kubectl sent: whatever a file leaves out, the
// server puts back as it was. Only what differs between two creations is set aside: uid, resourceVersion and
// timestamps, the Service addresses and node ports the server allocates (kept in the files, but another
// server cannot take the same ones), a Job's uid in its generated selector, and a Secret's values (REDACTED
// in Git: a restore brings its own).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { storableObject } from '../../core/redact-secret.js';
import { sanitizeObject, toCanonicalYaml } from '../../core/sanitize.js';
import { createTestNamespaces, type TestNamespaces } from '../support/kube-control-plane.js';
import { sharedControlPlane, type SharedControlPlane } from '../support/shared-control-plane.js';

const run = promisify(execFile);

type Obj = Record<string, unknown> & { kind: string; metadata: Record<string, unknown> & { name: string; uid?: string } };
interface Recorded {
  sent: Obj;
  audit: { objectRef: { resource: string; namespace?: string; apiGroup?: string }; responseObject: Obj };
}

const FIXTURE = new URL('../fixtures/kube-objects/kube-1.20.json', import.meta.url);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** What may differ between two creations of one object: see the top of the file. */
function comparable(obj: Obj): Obj {
  let text = JSON.stringify(obj);
  // A Job's generated selector and labels name its uid.
  if (obj.metadata.uid) text = text.split(obj.metadata.uid).join('<uid>');
  const o = JSON.parse(text) as Obj & { spec?: Record<string, unknown> & { ports?: Record<string, unknown>[] } };
  for (const key of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'selfLink', 'name', 'namespace']) delete o.metadata[key];
  if (o.kind === 'Service' && o.spec) {
    for (const key of ['clusterIP', 'clusterIPs', 'healthCheckNodePort']) if (o.spec.clusterIP !== 'None') delete o.spec[key];
    for (const port of o.spec.ports ?? []) delete port.nodePort;
  }
  if (o.kind === 'Secret') delete o.data;
  return o;
}

describe('files applied to a real API server give back the objects it stored', () => {
  let cp: SharedControlPlane;
  let ns: TestNamespaces;
  let dir: string;
  const suffix = randomBytes(3).toString('hex');
  const clusterScoped: string[] = [];

  beforeAll(async () => {
    cp = await sharedControlPlane();
    ns = await createTestNamespaces(cp.kubeConfig, 'defaults');
    dir = await mkdtemp(join(tmpdir(), 'gr-defaults-'));
  });
  afterAll(async () => {
    if (cp) for (const ref of clusterScoped) await run('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'delete', '--ignore-not-found', '--wait=false', ref]).catch(() => undefined);
    await ns?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('for every recorded object', async () => {
    const { objects } = JSON.parse(await readFile(FIXTURE, 'utf8')) as { objects: Recorded[] };
    const [namespace] = ns.names as [string];
    const files = objects.map((r) => {
      const ref = r.audit.objectRef;
      const content = toCanonicalYaml(sanitizeObject(storableObject(clone(r.audit.responseObject), ref)));
      const obj = parse(content) as Obj & { spec?: Record<string, unknown> & { ports?: Record<string, unknown>[] }; data?: unknown };
      if (ref.namespace) obj.metadata.namespace = namespace;
      else {
        obj.metadata.name = `${obj.metadata.name}-${suffix}`;
        clusterScoped.push(`${ref.resource}${ref.apiGroup ? `.${ref.apiGroup}` : ''}/${obj.metadata.name}`);
      }
      // Allocated by the server that recorded it: this one allocates its own.
      if (obj.kind === 'Service' && obj.spec && obj.spec.clusterIP !== 'None') {
        delete obj.spec.clusterIP;
        delete obj.spec.healthCheckNodePort;
        for (const port of obj.spec.ports ?? []) delete port.nodePort;
      }
      if (obj.kind === 'Secret') obj.data = r.audit.responseObject.data;
      return obj;
    });
    const path = join(dir, 'files.yaml');
    await writeFile(path, files.map((f) => stringify(f)).join('---\n'));
    const { stdout } = await run('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'create', '-f', path, '-o', 'yaml'], { maxBuffer: 64 * 1024 * 1024 });
    const created = parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
    expect(created).toHaveLength(objects.length);
    objects.forEach((r, i) => {
      expect(comparable(created[i]!), `${r.sent.kind} ${r.sent.metadata.name}`).toEqual(comparable(r.audit.responseObject));
    });
  });
});
