// The age layer of a SOPS file: the 32-byte data key sealed once per recipient, each copy a complete
// ASCII-armored age file (age/keysource.go). Opening tries every identity against every entry and
// ignores the `recipient` text, as sops does: it is a label, not a selector.
import { armor, Decrypter, Encrypter, identityToRecipient } from 'age-encryption';
import { SopsKeyError } from './errors.js';
import type { AgeEntry } from './metadata.js';

export const DATA_KEY_BYTES = 32;

const NO_MATCH = "no identity matched any of the file's recipients";

/**
 * The identities in an age key file's text (as SOPS_AGE_KEY or keys.txt hold them): every line that is
 * neither empty nor a `#` comment, one identity each. Lines are not trimmed, as sops does not trim them.
 */
export function parseAgeIdentities(keyFileText: string): string[] {
  const identities: string[] = [];
  for (const line of keyFileText.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    if (!line.startsWith('AGE-SECRET-KEY-1') && !line.startsWith('AGE-SECRET-KEY-PQ-1')) {
      throw new SopsKeyError(`an age key line is not an AGE-SECRET-KEY identity (plugin and SSH identities are not supported): ${line.slice(0, 16)}…`);
    }
    identities.push(line);
  }
  return identities;
}

/** The public recipient (`age1…`, `age1pq1…`) of an identity. */
export async function recipientOf(identity: string): Promise<string> {
  try {
    return await identityToRecipient(identity);
  } catch (err) {
    throw new SopsKeyError(`not a valid age identity: ${(err as Error).message}`);
  }
}

/** Opens the data key from the first entry any identity can open; SopsKeyError if none can. */
export async function openDataKey(entries: readonly AgeEntry[], identities: readonly string[]): Promise<Uint8Array> {
  if (identities.length === 0) throw new SopsKeyError('no age identity was given');
  if (entries.length === 0) throw new SopsKeyError('the file has no age entry: its data key was not sealed to any age recipient');
  const decrypter = new Decrypter();
  for (const identity of identities) {
    try {
      decrypter.addIdentity(identity);
    } catch (err) {
      throw new SopsKeyError(`not a usable age identity: ${(err as Error).message}`);
    }
  }
  const problems: string[] = [];
  for (const [i, entry] of entries.entries()) {
    let sealed: Uint8Array;
    try {
      sealed = armor.decode(entry.enc);
    } catch (err) {
      problems.push(`entry ${i} is not an armored age file (${(err as Error).message})`);
      continue;
    }
    let key: Uint8Array;
    try {
      key = await decrypter.decrypt(sealed);
    } catch (err) {
      const message = (err as Error).message;
      if (message !== NO_MATCH) problems.push(`entry ${i} (${entry.recipient}) did not open: ${message}`);
      continue;
    }
    if (key.length !== DATA_KEY_BYTES) {
      problems.push(`entry ${i} (${entry.recipient}) holds ${key.length} bytes, not a 32-byte data key`);
      continue;
    }
    return key;
  }
  const recipients = entries.map((e) => e.recipient || '(no recipient)').join(', ');
  throw new SopsKeyError(
    `none of the given age identities opens the data key (sealed to: ${recipients})${problems.length ? `; ${problems.join('; ')}` : ''}`,
  );
}

/** Seals the data key to each recipient separately, as sops writes one age entry per recipient. */
export async function sealDataKey(dataKey: Uint8Array, recipients: readonly string[]): Promise<AgeEntry[]> {
  if (dataKey.length !== DATA_KEY_BYTES) throw new SopsKeyError(`a data key must be ${DATA_KEY_BYTES} bytes`);
  if (recipients.length === 0) throw new SopsKeyError('at least one age recipient is needed');
  const entries: AgeEntry[] = [];
  for (const recipient of recipients) {
    const encrypter = new Encrypter();
    let sealed: Uint8Array;
    try {
      encrypter.addRecipient(recipient);
      sealed = await encrypter.encrypt(dataKey);
    } catch (err) {
      throw new SopsKeyError(`not a usable age recipient ${JSON.stringify(recipient)}: ${(err as Error).message}`);
    }
    entries.push({ recipient, enc: armor.encode(sealed) });
  }
  return entries;
}
