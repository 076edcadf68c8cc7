// Where an object lives in a repository: {path}/{namespace}/{group}/{resource}/{name}.yaml.
// Every segment comes from a cluster, i.e. from input, so each one is encoded such that it can
// never name a parent directory, an absolute path, or Git's own `.git` directory.
import { createHash } from 'node:crypto';
import type { ObjectIdentity } from './contracts.js';

/** The directory for cluster-scoped objects. A real namespace never encodes to it (see below). */
export const CLUSTER_SCOPED_DIR = '_cluster';

/** Most file systems allow 255 bytes per path component. */
const MAX_SEGMENT_BYTES = 255;
const FILE_SUFFIX = '.yaml';
/** A Secret of a target with encryption: a SOPS file, named as `sops` and Flux users expect it. */
export const SOPS_FILE_SUFFIX = '.sops.yaml';

/** A path segment or base path that would escape the repository, or cannot be written at all. */
export class UnsafePathError extends Error {
  override readonly name = 'UnsafePathError';
  constructor(
    readonly field: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super(`${field}: ${JSON.stringify(value)} ${reason}`);
  }
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Normalises a GitTarget's base path: '' and '.' are the repository root (''); leading, trailing
 * and repeated slashes and `.` segments are removed. `..`, `.git`, backslashes and control
 * characters are refused. The result is relative and posix, e.g. `clusters/prod`.
 */
export function validateBasePath(p: string | undefined | null): string {
  const raw = p ?? '';
  if (raw.includes('\\')) throw new UnsafePathError('path', raw, 'contains a backslash');
  if (CONTROL_CHARS.test(raw)) throw new UnsafePathError('path', raw, 'contains a control character');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  for (const s of segments) {
    if (s === '..') throw new UnsafePathError('path', raw, 'has a ".." segment, which would escape the repository');
    if (s.toLowerCase() === '.git') throw new UnsafePathError('path', raw, 'points into the .git directory');
    if (Buffer.byteLength(s, 'utf8') > MAX_SEGMENT_BYTES) throw new UnsafePathError('path', raw, `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return segments.join('/');
}

function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * Percent-encodes (UTF-8, uppercase hex) every character outside [A-Za-z0-9._-], and also a
 * leading '.' (so no segment is ever `.git`, `.github`, …) and, for namespaces, a leading '_'
 * (so no namespace is ever mistaken for `_cluster`). Empty, `.` and `..` are refused.
 * A segment whose encoding would be too long for a file system keeps a prefix and gets
 * `~` + a hash of the full value; `~` is never produced by encoding, so this cannot collide
 * with a real name.
 */
export function encodeSegment(field: string, value: string, suffix = '', reservedLeading = ''): string {
  if (value === '' || value === '.' || value === '..') {
    throw new UnsafePathError(field, value, value === '' ? 'is empty' : 'would escape the repository path');
  }
  let encoded = '';
  for (const ch of value) {
    const first = encoded === '';
    if (/^[A-Za-z0-9._-]$/.test(ch) && !(first && (ch === '.' || reservedLeading.includes(ch)))) encoded += ch;
    else encoded += percentEncode(ch);
  }
  if (encoded.length + suffix.length > MAX_SEGMENT_BYTES) {
    const hash = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16);
    let keep = MAX_SEGMENT_BYTES - suffix.length - hash.length - 1;
    // Never cut through a %XX escape.
    if (encoded[keep - 1] === '%') keep -= 1;
    else if (encoded[keep - 2] === '%') keep -= 2;
    encoded = `${encoded.slice(0, keep)}~${hash}`;
  }
  return encoded + suffix;
}

/**
 * `{basePath}/{namespace|_cluster}/{group}/{resource}/{name}.yaml`, the group segment left out for
 * the core group. Relative, posix, never absolute, never containing `..`.
 * Throws UnsafePathError for a bad base path or an empty / `.` / `..` segment.
 */
export function objectFilePath(basePath: string, id: ObjectIdentity, layout: FileLayout = {}): string {
  return `${typeFolderPath(basePath, id)}/${objectFileName(id.name, layout.encrypted === true && isSecretIdentity(id))}`;
}

/** How a target lays out its files: `encrypted` (spec.encryption) writes each Secret as `{name}.sops.yaml`. */
export interface FileLayout {
  encrypted?: boolean;
}

/** A core v1 Secret: the one type whose file a target with encryption writes as SOPS. */
export function isSecretIdentity(id: Pick<ObjectIdentity, 'group' | 'resource'>): boolean {
  return id.group === '' && id.resource === 'secrets';
}

/** `{name}.yaml` (or `{name}.sops.yaml` for a SOPS file), encoded: an object's file name in its type's folder. */
export function objectFileName(name: string, sops = false): string {
  return encodeSegment('name', name, sops ? SOPS_FILE_SUFFIX : FILE_SUFFIX);
}

/** `{basePath}/{namespace|_cluster}`: the folder of one namespace's objects (of cluster-scoped ones for ''). */
export function namespaceFolderPath(basePath: string, namespace: string): string {
  const base = validateBasePath(basePath);
  const folder = namespace === '' ? CLUSTER_SCOPED_DIR : encodeSegment('namespace', namespace, '', '_');
  return base === '' ? folder : `${base}/${folder}`;
}

/**
 * `{basePath}/{namespace|_cluster}/{group}/{resource}`: the folder of one type's objects in one namespace,
 * where objectFilePath puts each of them (its `name` is not used).
 */
export function typeFolderPath(basePath: string, id: Pick<ObjectIdentity, 'namespace' | 'group' | 'resource'>): string {
  const segments = [namespaceFolderPath(basePath, id.namespace)];
  if (id.group !== '') segments.push(encodeSegment('group', id.group));
  segments.push(encodeSegment('resource', id.resource));
  return segments.join('/');
}
