// What a reconcile changes in Git: the findings of the children (what the cluster holds now, as the live
// path would write it) against the target's current tree. Pure.
import type { ResolvedTarget } from '../../config/resolved-config.js';
import { SOPS_FILE_SUFFIX, validateBasePath } from '../../core/path-layout.js';

export type PruneMode = ResolvedTarget['prune'];

/** What a child found for one file: the object's resourceVersion and the file content the live path would write. */
export interface Finding {
  rv: string;
  content: string;
}

export interface DiffEntry {
  path: string;
  content: string;
  /**
   * The resourceVersion of the listed object. The write path must pass it on with the write: the writer
   * keeps the newest resourceVersion it applied per file (the partition's `versions` hash) and skips a
   * write whose resourceVersion is older than the one applied. So a snapshot listed before a live event
   * changed the object never overwrites that event's newer content, whichever reaches the writer first.
   */
  rv: string;
}

export interface DeleteEntry {
  path: string;
  /**
   * The oldest list resourceVersion of the run ('' when unknown). An object created after its child
   * listed it may have been written by a live event before the tree was read: its file is then newer
   * than this snapshot, and the writer must skip the delete (applied resourceVersion > this one).
   */
  rv: string;
}

export interface ReconcileDiff {
  created: DiffEntry[];
  updated: DiffEntry[];
  /** Files to remove; only with prune `Always`. */
  deleted: DeleteEntry[];
}

export interface DiffInput {
  /** File path → what the cluster holds. */
  findings: ReadonlyMap<string, Finding>;
  /** File path → content of the target's tree in Git (other paths are ignored). */
  tree: ReadonlyMap<string, string>;
  /** The target's base folder (ResolvedTarget.path); '' is the repository root. */
  basePath: string;
  prune: PruneMode;
  /** The oldest list resourceVersion of the run, carried by every delete. @defaultValue '' */
  snapshotRv?: string;
  /**
   * Whether a file lies where an object of a (type, namespace) this run listed completely would be: only
   * such a file may be pruned. A file of a type not listed (its API group failed discovery, a rule that
   * selects it no more) or any other file (CI config, a kustomization) says nothing and stays.
   * @defaultValue none: nothing is pruned
   */
  listedDirectory?: (path: string) => boolean;
}

/** True when `path` lies inside the target's base folder. */
export function isUnderBase(path: string, basePath: string): boolean {
  return under(path, validateBasePath(basePath));
}

/** `base` normalised already (validateBasePath). */
const under = (path: string, base: string): boolean => base === '' || path.startsWith(`${base}/`);

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** `{name}.sops.yaml` beside `{name}.yaml`: where a target with encryption keeps that Secret. */
const sopsTwin = (path: string): string => `${path.slice(0, -'.yaml'.length)}${SOPS_FILE_SUFFIX}`;
/** The `{name}.yaml` a `{name}.sops.yaml` stands for (itself for any other path). */
const plainTwin = (path: string): string => (path.endsWith(SOPS_FILE_SUFFIX) ? `${path.slice(0, -SOPS_FILE_SUFFIX.length)}.yaml` : path);

/**
 * created: found, no file yet; updated: found, file with other content; deleted (prune `Always` only):
 * a `.yaml` file under the base folder that no object was found for — other files (a README, a
 * kustomization kept as .yml) are never an object's file and stay. `Never` and `OnEvent` delete nothing:
 * with `OnEvent` only a real delete event removes a file. Nothing outside the base folder is touched,
 * whatever the inputs hold; equal content produces nothing.
 */
export function diffTree(input: DiffInput): ReconcileDiff {
  const { findings, tree } = input;
  const base = validateBasePath(input.basePath);
  const created: DiffEntry[] = [];
  const updated: DiffEntry[] = [];
  for (const [path, f] of findings) {
    if (!under(path, base)) continue;
    // A Secret a target keeps encrypted (`{name}.sops.yaml`, written from its audit events): a listing
    // carries no values, so the file stays as the live path wrote it and no REDACTED twin is added.
    if (tree.has(sopsTwin(path))) continue;
    const current = tree.get(path);
    if (current === undefined) created.push({ path, content: f.content, rv: f.rv });
    else if (current !== f.content) updated.push({ path, content: f.content, rv: f.rv });
  }
  const deleted: DeleteEntry[] = [];
  // Without the run's list resourceVersion a delete could not be checked against newer live events: none then.
  const snapshotRv = input.snapshotRv ?? '';
  if (input.prune === 'Always' && snapshotRv !== '' && input.listedDirectory) {
    for (const path of tree.keys()) {
      if (path.endsWith('.yaml') && under(path, base) && !findings.has(path) && !findings.has(plainTwin(path)) && input.listedDirectory(path)) deleted.push({ path, rv: snapshotRv });
    }
  }
  return { created: created.sort(byPath), updated: updated.sort(byPath), deleted: deleted.sort(byPath) };
}
