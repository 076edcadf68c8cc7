// The walk sops makes over a file's documents (sops.go Tree.Encrypt/Decrypt): every leaf in document order,
// encrypted or decrypted when the crypt rule says so, and its plaintext bytes fed to one SHA-512 — the
// MAC. List indices are not part of a path, nulls are skipped, unencrypted leaves are hashed too (unless
// `mac_only_encrypted`, which seeds the hash so the two kinds of MAC never coincide).
import { createHash, type Hash } from 'node:crypto';
import { decryptValue, encryptValue } from './cipher.js';
import { SopsInputError, SopsValueError } from './errors.js';
import { leafBytes, sopsMap, type SopsLeaf, type SopsMap, type SopsValue } from './tree.js';

/** SHA-256 of "sops": the first bytes hashed when `mac_only_encrypted` is set (sops.go MACOnlyEncryptedInitialization). */
const MAC_ONLY_ENCRYPTED_SEED = createHash('sha256').update('sops').digest();

export interface WalkOptions {
  readonly key: Uint8Array;
  /** The crypt rule as a predicate over a value's path. */
  readonly encrypts: (path: readonly string[]) => boolean;
  readonly macOnlyEncrypted: boolean;
}

/** A value's AAD: its path keys joined with ':', plus a trailing ':' (`stringData:password:`; ':' at the top). */
export function aadOf(path: readonly string[]): string {
  return `${path.join(':')}:`;
}

function newMac(macOnlyEncrypted: boolean): Hash {
  const hash = createHash('sha512');
  if (macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_SEED);
  return hash;
}

function isLeaf(value: SopsValue): value is SopsLeaf {
  return !Array.isArray(value) && (value === null || typeof value !== 'object' || value.type !== 'map');
}

function walk(value: SopsValue, path: string[], onLeaf: (leaf: Exclude<SopsLeaf, null>, path: string[]) => SopsValue): SopsValue {
  if (value === null) return null;
  if (Array.isArray(value)) return value.map((item) => walk(item, path, onLeaf));
  if (isLeaf(value)) return onLeaf(value, path);
  return sopsMap(value.entries.map(([k, v]): [string, SopsValue] => [k, walk(v, [...path, k], onLeaf)]));
}

/**
 * Decrypts every value the rule selects and computes the MAC over the plaintext, as uppercase hex.
 * Throws SopsValueError naming the first value that does not decrypt.
 */
export function decryptDocuments(documents: readonly SopsMap[], options: WalkOptions): { documents: SopsMap[]; mac: string } {
  const hash = newMac(options.macOnlyEncrypted);
  const out = documents.map(
    (doc) =>
      walk(doc, [], (leaf, path) => {
        const encrypted = options.encrypts(path);
        let plain: Exclude<SopsLeaf, null> = leaf;
        if (encrypted) {
          const aad = aadOf(path);
          if (typeof leaf !== 'string') throw new SopsValueError(aad, `the value at '${aad}' should be encrypted but is not a string`);
          const value = decryptValue(leaf, options.key, aad);
          if (typeof value === 'object' && value.type === 'comment') {
            throw new SopsValueError(aad, `the value at '${aad}' is an encrypted comment, not a value`);
          }
          plain = value;
        }
        if (!options.macOnlyEncrypted || encrypted) hash.update(leafBytes(plain));
        return plain;
      }) as SopsMap,
  );
  return { documents: out, mac: hash.digest('hex').toUpperCase() };
}

/**
 * Encrypts every value the rule selects and computes the MAC over the plaintext. `iv` may supply the IV
 * of an encrypted value (an unchanged value keeps its ciphertext, as `sops edit` does; tests reproduce a
 * file byte for byte); a fresh random IV otherwise.
 */
export function encryptDocuments(
  documents: readonly SopsMap[],
  options: WalkOptions & { readonly iv?: (aad: string, leaf: Exclude<SopsLeaf, null>) => Uint8Array | undefined },
): { documents: SopsMap[]; mac: string } {
  const hash = newMac(options.macOnlyEncrypted);
  const out = documents.map(
    (doc) =>
      walk(doc, [], (leaf, path) => {
        const encrypted = options.encrypts(path);
        if (!options.macOnlyEncrypted || encrypted) hash.update(leafBytes(leaf));
        if (!encrypted) return leaf;
        const aad = aadOf(path);
        if (typeof leaf === 'object' && leaf.type === 'bytes') throw new SopsInputError(`raw bytes cannot be encrypted (at '${aad}')`);
        const isEmpty = leaf === '';
        return isEmpty ? '' : encryptValue(leaf, options.key, aad, options.iv?.(aad, leaf));
      }) as SopsMap,
  );
  return { documents: out, mac: hash.digest('hex').toUpperCase() };
}
