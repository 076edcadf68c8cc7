// The Secrets of a target with encryption, as the writer turns them into SOPS files. A write job holds the
// Secret's sanitized YAML with REDACTED values and, beside it, the values sealed at the webhook; here they
// are opened with the target's identity, put back, and the file is sealed again with resealSecret on top of
// the file the tree holds, so an unchanged Secret gives the same bytes (no commit) and a changed value
// changes only its own ciphertext. The plaintext lives only in this function's memory, never in a job,
// a log line or an error message.
import { parse } from 'yaml';
import type { SealedValues, WriteJob } from '../../core/contracts.js';
import { isRecord } from '../../core/json.js';
import { SOPS_FILE_SUFFIX } from '../../core/path-layout.js';
import { secretValuesOf, unsealSecretValues, withSecretValues, type SecretValues } from '../../core/sealed-values.js';
import { decryptSops, plainDocument, resealSecret, SopsError } from '../../core/sops/index.js';
import { isStale, keepNewestVersion, versionLeft } from './plan-commits.js';

/** What the writer needs of a target with encryption (config/resolved-config.ts TargetEncryption). */
export interface WriteEncryption {
  identity: string;
  recipients: readonly string[];
}

/** Whether the writer makes this job's file a SOPS file. */
export function isSopsWrite(job: WriteJob, encryption: WriteEncryption | undefined): encryption is WriteEncryption {
  return encryption !== undefined && job.content !== null && !job.collection && !job.reconcile && job.filePath.endsWith(SOPS_FILE_SUFFIX);
}

/** Opens a job's sealed values; an envelope that does not open fails that job alone (UnsealError). */
export async function openSealed(sealed: SealedValues | undefined, encryption: WriteEncryption): Promise<SecretValues> {
  return sealed ? unsealSecretValues(sealed, [encryption.identity]) : {};
}

/**
 * The values a SOPS file holds (to keep them when a write carries none); empty, and said through
 * `unreadable`, when it does not open: the new file then holds REDACTED where the old one had values.
 */
async function valuesOfFile(path: string, text: string, identity: string, unreadable: SopsPass['unreadable']): Promise<SecretValues> {
  try {
    return secretValuesOf(plainDocument(await decryptSops(text, [identity]))) ?? {};
  } catch (err) {
    if (!(err instanceof SopsError)) throw err;
    unreadable(path, err);
    return {};
  }
}

export interface SopsPass {
  /** The target's encryption of a job, or undefined (a target without encryption, or not configured). */
  encryptionOf: (job: WriteJob) => WriteEncryption | undefined;
  /** The opened values of a job (by its index in the batch), when it carried sealed ones. */
  valuesOf: (index: number) => SecretValues | undefined;
  /** The content of a file at the start of the batch (the tree's blob), read on demand. */
  previousOf: (paths: readonly string[]) => Promise<Map<string, string>>;
  /** path → applied resourceVersion, for the stale check (a stale write is left for the plan to skip). */
  known: ReadonlyMap<string, string>;
  /** Told of a previous file whose values could not be read back (its values are then not kept). */
  unreadable: (path: string, err: SopsError) => void;
}

/**
 * `batch` with the content of each SOPS write replaced by its file, in order: each file is sealed on top
 * of what the tree holds, or what an earlier write of the batch made of it. `indices` are the jobs'
 * places in the whole batch (for valuesOf).
 */
export async function withSopsContents(batch: readonly WriteJob[], indices: readonly number[], pass: SopsPass): Promise<WriteJob[]> {
  const sops = batch.map((job) => {
    const encryption = pass.encryptionOf(job);
    return isSopsWrite(job, encryption) ? encryption : undefined;
  });
  if (sops.every((e) => e === undefined)) return [...batch];
  const startPaths = [...new Set(batch.filter((_, k) => sops[k] !== undefined).map((j) => j.filePath))];
  const start = await pass.previousOf(startPaths);
  /** path → the file as the writes so far leave it (null: deleted). */
  const current = new Map<string, string | null>();
  const versions = new Map<string, string>();
  const out: WriteJob[] = [];
  for (const [k, job] of batch.entries()) {
    const encryption = sops[k];
    // The plan's own stale guard and version record, so that what it will skip is not sealed here.
    const knownRv = versions.get(job.filePath) ?? pass.known.get(job.filePath);
    const stale = isStale(job, knownRv);
    if (!stale) keepNewestVersion(versions, job.filePath, versionLeft(job, knownRv));
    if (job.content === null && !job.collection) current.set(job.filePath, null);
    if (!encryption || stale) {
      out.push(job);
      continue;
    }
    const previous = current.has(job.filePath) ? (current.get(job.filePath) ?? undefined) : start.get(job.filePath);
    const values = pass.valuesOf(indices[k]!) ?? {};
    // A write without sealed values (watch mode, an object read back, an event stored before encryption was
    // configured) keeps the values of the file before it: better the last known values than REDACTED ones.
    const fallback = job.sealedValues === undefined && previous !== undefined ? await valuesOfFile(job.filePath, previous, encryption.identity, pass.unreadable) : {};
    const object = parse(job.content!) as unknown;
    if (!isRecord(object)) throw new Error(`the content of ${job.filePath} is not an object`);
    const sealed = await resealSecret(withSecretValues(object, values, fallback), { previous, identities: [encryption.identity], recipients: encryption.recipients });
    current.set(job.filePath, sealed.text);
    out.push({ ...job, content: sealed.text });
  }
  return out;
}
