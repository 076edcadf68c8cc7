// The IVs of a file's values, keyed by path and plaintext, for writing a new version of the file with the
// same data key: a value that did not change is encrypted with its old IV and so keeps its ciphertext,
// which keeps a Git diff to the values that changed (sops's cipher stash does the same on `sops edit`).
// An IV is only ever reused for the same plaintext under the same AAD and key, which GCM allows.
import { leafBytes, type SopsLeaf, type SopsMap, type SopsValue } from './tree.js';
import { aadOf } from './walk.js';

const IV_FIELD = /^ENC\[AES256_GCM,data:.+,iv:(.+),tag:.+,type:.+\]/s;

export type IvStash = (aad: string, leaf: Exclude<SopsLeaf, null>) => Uint8Array | undefined;

function stashKey(aad: string, leaf: Exclude<SopsLeaf, null>): string {
  const type = typeof leaf === 'string' ? 'str' : typeof leaf === 'boolean' ? 'bool' : leaf.type;
  return `${aad}\u0000${type}\u0000${Buffer.from(leafBytes(leaf)).toString('hex')}`;
}

/** Pairs each encrypted value of `encrypted` with its plaintext in `plain` (the same documents, decrypted). */
export function ivStash(encrypted: readonly SopsMap[], plain: readonly SopsMap[]): IvStash {
  const ivs = new Map<string, Uint8Array>();
  const visit = (enc: SopsValue, dec: SopsValue, path: string[]): void => {
    if (Array.isArray(enc) && Array.isArray(dec)) {
      enc.forEach((item, i) => dec[i] !== undefined && visit(item, dec[i]!, path));
      return;
    }
    if (enc !== null && typeof enc === 'object' && !Array.isArray(enc) && enc.type === 'map') {
      if (dec === null || typeof dec !== 'object' || Array.isArray(dec) || dec.type !== 'map') return;
      enc.entries.forEach(([k, v], i) => {
        const other = dec.entries[i];
        if (other && other[0] === k) visit(v, other[1], [...path, k]);
      });
      return;
    }
    if (typeof enc !== 'string' || dec === null || Array.isArray(dec) || (typeof dec === 'object' && dec.type === 'map')) return;
    const m = IV_FIELD.exec(enc);
    if (m) ivs.set(stashKey(aadOf(path), dec), Buffer.from(m[1]!, 'base64'));
  };
  encrypted.forEach((doc, i) => plain[i] && visit(doc, plain[i]!, []));
  return (aad, leaf) => ivs.get(stashKey(aad, leaf));
}
