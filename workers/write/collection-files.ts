// Which files a collection write removes (a deletecollection, or a deleted namespace), against the tree the
// writer plans on. The job's filePath is the folder; its `collection` says which files in it:
// - `names` (the deletecollection's answer named the deleted objects): `{folder}/{name}.yaml` of each, where
//   the tree has it;
// - `keep` (the answer was not recorded; the router listed the cluster): every `*.yaml` directly in the folder
//   whose object is not one still in the cluster (keep) and that the request's selectors select: the label
//   selector against the file's `metadata.labels`, the field selector against its name and namespace.
//   A field selector on any other field (a Pod's `status.phase`, `spec.nodeName`) cannot be read from a file
//   (Git holds no status, and a type's selectable fields are the API server's own): such a requirement counts
//   as met. That is safe: `keep` already holds every object still in the cluster, so a file it lets go is one
//   whose object is gone; counting it as not met would leave the files of deleted objects in Git for good.
//   A file whose YAML does not parse (an edit by hand) has no labels a selector could read: a selector that
//   needs labels does not select it, and it stays;
// - `everythingBelow` (a deleted namespace): every file below the folder, of every type, and `objectFile`
//   (the Namespace's own file) when given.
// Pure: the content of a file (for its labels) comes from `contentOf`, which the caller fills beforehand
// (write-batch.ts reads the blobs from the mirror).
import { parse } from 'yaml';
import { fieldsMatch, labelsMatch, parseFieldSelector, parseLabelSelector, type LabelRequirement } from '../../core/selectors.js';
import type { Collection, WriteJob } from '../../core/contracts.js';
import { isSecretIdentity, objectFileName } from '../../core/path-layout.js';
import { isRecord } from '../../core/json.js';

/** The content of a blob by its id; undefined when it was not read. */
export type ContentOf = (sha: string) => string | undefined;

/** `metadata.labels` of a file's YAML; undefined when it does not parse. Values that are not strings count as their text. */
export function labelsOfYaml(content: string): Record<string, string> | undefined {
  let doc: unknown;
  try {
    doc = parse(content);
  } catch {
    return undefined;
  }
  if (!isRecord(doc)) return undefined;
  const metadata = isRecord(doc.metadata) ? doc.metadata : {};
  const labels = isRecord(metadata.labels) ? metadata.labels : {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[k] = typeof v === 'string' ? v : String(v);
  return out;
}

/** Whether a collection write needs the content of the files in its folder (a label selector with requirements). */
export function needsContent(collection: Collection | undefined): boolean {
  return collection?.keep !== undefined && collection.labelSelector !== undefined && parseLabelSelector(collection.labelSelector).length > 0;
}

/** The paths of the tree directly in `folder` that are object files (`*.yaml`), sorted. */
export function filesIn(tree: ReadonlyMap<string, string>, folder: string): string[] {
  const prefix = `${folder}/`;
  return [...tree.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/') && p.endsWith('.yaml')).sort();
}

const fileOf = (folder: string, name: string) => `${folder}/${objectFileName(name)}`;

/**
 * The files an object of the collection's type may have in `folder`: `{name}.yaml`, and for a Secret also
 * `{name}.sops.yaml` (a target with encryption; one that turned it on later may still hold the plain file).
 */
const filesOf = (folder: string, name: string, secrets: boolean): string[] =>
  secrets ? [fileOf(folder, name), `${folder}/${objectFileName(name, true)}`] : [fileOf(folder, name)];

/**
 * The files `job` removes from `tree`, sorted (empty: nothing to remove). Throws when a label selector must
 * read a file whose content `contentOf` does not have (the caller reads every candidate first).
 */
export function collectionFiles(job: Pick<WriteJob, 'filePath' | 'identity' | 'collection'>, tree: ReadonlyMap<string, string>, contentOf: ContentOf = () => undefined): string[] {
  const c = job.collection;
  if (!c) return [];
  const folder = job.filePath;
  const secrets = isSecretIdentity(job.identity);
  if (c.names) return [...new Set(c.names.flatMap((n) => filesOf(folder, n, secrets)))].filter((p) => tree.has(p)).sort();
  if (c.everythingBelow) {
    const prefix = `${folder}/`;
    const below = [...tree.keys()].filter((p) => p.startsWith(prefix));
    if (c.objectFile !== undefined && tree.has(c.objectFile)) below.push(c.objectFile);
    return [...new Set(below)].sort();
  }
  const kept = new Set((c.keep ?? []).flatMap((n) => filesOf(folder, n, secrets)));
  const labels: LabelRequirement[] = parseLabelSelector(c.labelSelector ?? '');
  const fields = parseFieldSelector(c.fieldSelector ?? '');
  return filesIn(tree, folder).filter((path) => {
    if (kept.has(path)) return false;
    const equals = (field: string, value: string): boolean | undefined => {
      if (field === 'metadata.name') return value !== '' && value !== '.' && value !== '..' && filesOf(folder, value, secrets).includes(path);
      if (field === 'metadata.namespace') return job.identity.namespace === value;
      return undefined;
    };
    if (!fieldsMatch(fields, equals, true)) return false;
    if (labels.length === 0) return true;
    const sha = tree.get(path)!;
    const content = contentOf(sha);
    if (content === undefined) throw new Error(`collection write of ${folder}: the content of ${path} (blob ${sha}) was not read`);
    const fileLabels = labelsOfYaml(content);
    return fileLabels !== undefined && labelsMatch(labels, fileLabels);
  });
}
