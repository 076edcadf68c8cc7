// Opening a SOPS file as `sops decrypt` does: load the store (YAML, JSON, binary or dotenv), take the
// metadata from the first document, open the data key with an age identity, decrypt every value the crypt
// rule selects, and refuse the file unless the MAC it carries matches the plaintext. A file Flux would
// accept (Flux skips the MAC) but sops would refuse is refused here too.
import { openDataKey, parseAgeIdentities } from './age-keys.js';
import { decryptValue, isEncryptedValue } from './cipher.js';
import { readDotenv } from './dotenv.js';
import { SopsFormatError, SopsMacError, SopsValueError } from './errors.js';
import { lastModifiedAad } from './go-format.js';
import { readMetadata, type SopsMetadata } from './metadata.js';
import { encryptsPath } from './rules.js';
import { sopsMap, toPlain, type SopsMap, type SopsValue } from './tree.js';
import { aadOf, decryptDocuments } from './walk.js';
import { readYaml, type YamlComment } from './yaml-read.js';

/** The stores this reader knows. `binary` is sops's JSON envelope around one `data` string. */
export type SopsFormat = 'yaml' | 'json' | 'binary' | 'dotenv';

/** A SOPS file parsed but not decrypted. */
export interface SopsEnvelope {
  readonly format: SopsFormat;
  /** The documents without their `sops` entry, values still encrypted. */
  readonly documents: readonly SopsMap[];
  readonly metadata: SopsMetadata;
  readonly comments: readonly YamlComment[];
}

export interface DecryptedComment {
  readonly document: number;
  readonly path: readonly string[];
  readonly text: string;
  /** False for a comment left as written: not encrypted, or one sops would also leave (it keeps a comment it cannot decrypt). */
  readonly decrypted: boolean;
}

export interface DecryptedSops {
  readonly format: SopsFormat;
  /** The plaintext documents, typed as sops types them, in file order, without `sops`. */
  readonly documents: readonly SopsMap[];
  readonly comments: readonly DecryptedComment[];
  readonly metadata: SopsMetadata;
  /** The verified MAC: uppercase hex SHA-512. */
  readonly mac: string;
}

const SOPS_KEY = 'sops';

/** Parses a SOPS file's text: its documents, metadata and comments. No key is needed. */
export function parseSops(text: string, format: SopsFormat = 'yaml'): SopsEnvelope {
  if (format === 'dotenv') {
    const parsed = readDotenv(text);
    if (!parsed.metadata) throw new SopsFormatError('the dotenv file has no sops_ metadata: it is not a SOPS file');
    return { format, documents: [parsed.document], metadata: readMetadata(parsed.metadata), comments: parsed.comments };
  }
  const parsed = readYaml(text, { json: format !== 'yaml' });
  const first = parsed.documents[0];
  const block = first?.entries.find(([k]) => k === SOPS_KEY)?.[1];
  if (block === undefined) throw new SopsFormatError("the file has no top-level 'sops' metadata: it is not a SOPS file");
  // sops reads the metadata from the first document and drops the key from every document.
  const documents = parsed.documents.map((doc) => sopsMap(doc.entries.filter(([k]) => k !== SOPS_KEY)));
  if (format === 'binary' && (documents.length !== 1 || documents[0]!.entries.length !== 1 || documents[0]!.entries[0]![0] !== 'data')) {
    throw new SopsFormatError("a binary SOPS file holds exactly one 'data' entry");
  }
  const comments = parsed.comments.filter((c) => c.path[0] !== SOPS_KEY);
  return { format, documents, metadata: readMetadata(block), comments };
}

/** Accepts identities as a list, or as the text of an age key file. */
function identityList(identities: string | readonly string[]): string[] {
  return typeof identities === 'string' ? parseAgeIdentities(identities) : [...identities];
}

/** Decrypts a parsed file with its data key and checks the MAC. */
export function decryptWithKey(envelope: SopsEnvelope, dataKey: Uint8Array): DecryptedSops {
  const { metadata } = envelope;
  const encrypts = encryptsPath(metadata.rule);
  const { documents, mac } = decryptDocuments(envelope.documents, { key: dataKey, encrypts, macOnlyEncrypted: metadata.macOnlyEncrypted });
  let stored: ReturnType<typeof decryptValue>;
  try {
    stored = decryptValue(metadata.mac, dataKey, lastModifiedAad(metadata.lastModified)!);
  } catch (err) {
    if (!(err instanceof SopsValueError)) throw err;
    throw new SopsMacError(
      `the MAC could not be decrypted: the 'mac' or 'lastmodified' field was changed, or the MAC was not written with lastmodified ${JSON.stringify(metadata.lastModified)} as its AAD`,
    );
  }
  if (stored !== mac) {
    throw new SopsMacError(
      `MAC mismatch: the values in the file do not match its MAC (a value was changed, added, removed or reordered); file has ${typeof stored === 'string' && stored ? stored : 'no MAC'}, computed ${mac}`,
    );
  }
  const comments = envelope.comments.map((c): DecryptedComment => {
    const keep: DecryptedComment = { document: c.document, path: c.path, text: c.text, decrypted: false };
    if (!encrypts(c.path) || !isEncryptedValue(c.text)) return keep;
    try {
      const value = decryptValue(c.text, dataKey, aadOf(c.path));
      if (typeof value === 'string') return { ...keep, text: value, decrypted: true };
      if (typeof value === 'object' && value !== null && value.type === 'comment') return { ...keep, text: value.text, decrypted: true };
      return keep;
    } catch {
      // sops keeps a comment it cannot decrypt as it is ("possibly unencrypted comment"): comments are not in the MAC.
      return keep;
    }
  });
  return { format: envelope.format, documents, comments, metadata, mac };
}

/**
 * Decrypts a SOPS file's text with age identities (`AGE-SECRET-KEY-1…` strings, or a key file's text).
 * Throws SopsFormatError, SopsUnsupportedError, SopsKeyError, SopsValueError or SopsMacError.
 */
export async function decryptSops(
  text: string,
  identities: string | readonly string[],
  options: { format?: SopsFormat } = {},
): Promise<DecryptedSops> {
  const envelope = parseSops(text, options.format ?? 'yaml');
  const dataKey = await openDataKey(envelope.metadata.age, identityList(identities));
  return decryptWithKey(envelope, dataKey);
}

/** The first document as a plain object (what a Kubernetes manifest file holds). */
export function plainDocument(decrypted: DecryptedSops, index = 0): Record<string, unknown> {
  const doc: SopsValue | undefined = decrypted.documents[index];
  if (doc === undefined) throw new SopsFormatError(`the file has no document ${index}`);
  return toPlain(doc) as Record<string, unknown>;
}
