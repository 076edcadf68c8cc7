// Writing a Secret's SOPS file again only when something a reader would see changed. Every encryption
// draws new IVs, so encrypting the same Secret twice never gives the same bytes: without this check each
// observation of an unchanged Secret would be a commit. The previous file is decrypted (MAC checked); the
// same values, clear fields and recipients mean the previous text is returned as it is.
// When only values changed, the data key and its age entries are kept and unchanged values keep their
// ciphertext (as `sops edit` does), so the Git diff shows what changed. When the recipients changed, the
// data key is new: a recipient that was removed must not be able to read what is written from now on.
import { randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES, openDataKey, parseAgeIdentities, sealDataKey } from './age-keys.js';
import { decryptWithKey, parseSops } from './decrypt.js';
import { secretDocument } from './encrypt-secret.js';
import { SopsError } from './errors.js';
import { formatLastModified } from './go-format.js';
import { ivStash } from './iv-stash.js';
import { SECRET_RULE } from './rules.js';
import { sameTree } from './tree.js';
import { writeSopsYaml, type WriteParams } from './write.js';

export type ResealReason =
  /** There was no previous file. */
  | 'new'
  /** Same values, clear fields and recipients: `text` is the previous file, byte for byte. */
  | 'unchanged'
  /** Values or clear fields changed; data key kept. */
  | 'content-changed'
  /** The recipients (or the key types, or the crypt rule) differ from what is asked: new data key. */
  | 'recipients-changed'
  /** The previous file could not be opened or failed its MAC check: written anew. `detail` says why. */
  | 'previous-unreadable';

export interface ResealResult {
  readonly text: string;
  /** False only for 'unchanged'. */
  readonly changed: boolean;
  readonly reason: ResealReason;
  /** Why the previous file was unreadable (an error message, never a plaintext). */
  readonly detail?: string;
}

export interface ResealOptions {
  /** The file as it is in Git now, if there is one. */
  readonly previous?: string | undefined;
  /** Identities that can open the previous file (strings, or an age key file's text). */
  readonly identities: string | readonly string[];
  readonly recipients: readonly string[];
  readonly now?: Date;
  readonly indent?: number;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
};

/** The SOPS file for `object`: the previous text when nothing changed, a new encryption otherwise. */
export async function resealSecret(object: Record<string, unknown>, options: ResealOptions): Promise<ResealResult> {
  const document = secretDocument(object);
  const base = {
    lastModified: formatLastModified(options.now ?? new Date()),
    rule: SECRET_RULE,
    ...(options.indent !== undefined ? { indent: options.indent } : {}),
  };
  const fresh = async (reason: ResealReason, detail?: string): Promise<ResealResult> => {
    const dataKey = randomBytes(DATA_KEY_BYTES);
    const age = await sealDataKey(dataKey, options.recipients);
    const text = writeSopsYaml([document], { ...base, dataKey, age });
    return { text, changed: true, reason, ...(detail !== undefined ? { detail } : {}) };
  };
  if (options.previous === undefined) return fresh('new');

  let previous: ReturnType<typeof decryptWithKey>;
  let dataKey: Uint8Array;
  let envelope: ReturnType<typeof parseSops>;
  try {
    const identities = typeof options.identities === 'string' ? parseAgeIdentities(options.identities) : options.identities;
    envelope = parseSops(options.previous, 'yaml');
    dataKey = await openDataKey(envelope.metadata.age, identities);
    previous = decryptWithKey(envelope, dataKey);
  } catch (err) {
    if (err instanceof SopsError) return fresh('previous-unreadable', err.message);
    throw err;
  }
  const meta = previous.metadata;
  const sameKeys =
    meta.otherKeyTypes.length === 0 &&
    sameSet(
      meta.age.map((a) => a.recipient),
      options.recipients,
    ) &&
    meta.rule.kind === SECRET_RULE.kind &&
    meta.rule.value === SECRET_RULE.value &&
    !meta.macOnlyEncrypted;
  if (!sameKeys) return fresh('recipients-changed');
  if (previous.documents.length === 1 && sameTree(previous.documents[0]!, document)) {
    return { text: options.previous, changed: false, reason: 'unchanged' };
  }
  const params: WriteParams = { ...base, dataKey, age: meta.age, iv: ivStash(envelope.documents, previous.documents) };
  return { text: writeSopsYaml([document], params), changed: true, reason: 'content-changed' };
}
