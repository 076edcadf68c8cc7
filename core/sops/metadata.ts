// The `sops:` block: which keys sealed the data key, when the file was written (the MAC's AAD), the MAC,
// the crypt rule, the sops version. Read by name, in any order (stores/metadata.go); written in the field
// order sops 3.10 to 3.12 use (stores.go Metadata struct; empty key lists left out), which is what the
// Flux vectors of those versions show.
import { SopsFormatError, SopsUnsupportedError } from './errors.js';
import { lastModifiedAad } from './go-format.js';
import { CRYPT_RULE_KINDS, DEFAULT_RULE, type CryptRule, type CryptRuleKind } from './rules.js';
import { isSopsMap, mapGet, sopsMap, type SopsMap, type SopsValue } from './tree.js';

/** The version written into new files: the sops release whose layout the writer reproduces. */
export const SOPS_FORMAT_VERSION = '3.12.1';

/** One age recipient's copy of the data key: `enc` is an armored age file holding the 32 raw key bytes. */
export interface AgeEntry {
  readonly recipient: string;
  readonly enc: string;
}

export interface SopsMetadata {
  readonly age: readonly AgeEntry[];
  /** As written in the file. */
  readonly lastModified: string;
  /** The encrypted MAC, `ENC[...]`. */
  readonly mac: string;
  readonly rule: CryptRule;
  readonly macOnlyEncrypted: boolean;
  readonly version: string;
  /** Key types other than age that hold entries (pgp, kms …): this module cannot use them. */
  readonly otherKeyTypes: readonly string[];
}

const OTHER_KEY_TYPES = ['kms', 'gcp_kms', 'hckms', 'azure_kv', 'hc_vault', 'pgp'] as const;
const COMMENT_RULES = ['unencrypted_comment_regex', 'encrypted_comment_regex'] as const;

function text(value: SopsValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  // An unquoted timestamp reads as a time; sops's weakly typed metadata decoding still takes it as text.
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && value.type === 'time') return value.text;
  return undefined;
}

function required(block: SopsMap, key: string): string {
  const value = text(mapGet(block, key));
  if (value === undefined) throw new SopsFormatError(`the sops metadata has no '${key}' string`);
  return value;
}

function isNonEmptyList(value: SopsValue | undefined): boolean {
  return Array.isArray(value) && value.length > 0;
}

/** Reads the metadata block (the value of the top-level `sops` key). */
export function readMetadata(block: SopsValue): SopsMetadata {
  if (!isSopsMap(block)) throw new SopsFormatError("the 'sops' entry is not a mapping");
  if (isNonEmptyList(mapGet(block, 'key_groups'))) {
    throw new SopsUnsupportedError('files with several key groups (Shamir secret sharing) are not supported');
  }
  const ageValue = mapGet(block, 'age');
  const age: AgeEntry[] = [];
  if (ageValue !== undefined && ageValue !== null) {
    if (!Array.isArray(ageValue)) throw new SopsFormatError("the sops metadata's 'age' is not a list");
    for (const [i, item] of ageValue.entries()) {
      if (!isSopsMap(item)) throw new SopsFormatError(`sops age entry ${i} is not a mapping`);
      const recipient = text(mapGet(item, 'recipient')) ?? '';
      const enc = text(mapGet(item, 'enc'));
      if (enc === undefined) throw new SopsFormatError(`sops age entry ${i} has no 'enc'`);
      age.push({ recipient, enc });
    }
  }
  const lastModified = required(block, 'lastmodified');
  if (lastModifiedAad(lastModified) === undefined) {
    throw new SopsFormatError(`the sops metadata's lastmodified ${JSON.stringify(lastModified)} is not an RFC 3339 time`);
  }
  const rules: CryptRule[] = [];
  for (const kind of CRYPT_RULE_KINDS) {
    const value = text(mapGet(block, kind));
    if (value) rules.push({ kind, value });
  }
  for (const kind of COMMENT_RULES) {
    if (text(mapGet(block, kind))) throw new SopsUnsupportedError(`the crypt rule '${kind}' is not supported`);
  }
  if (rules.length > 1) throw new SopsFormatError(`the sops metadata has more than one crypt rule: ${rules.map((r) => r.kind).join(', ')}`);
  const onlyEncrypted = mapGet(block, 'mac_only_encrypted');
  return {
    age,
    lastModified,
    mac: required(block, 'mac'),
    rule: rules[0] ?? DEFAULT_RULE,
    macOnlyEncrypted: onlyEncrypted === true || onlyEncrypted === 'true',
    version: required(block, 'version'),
    otherKeyTypes: OTHER_KEY_TYPES.filter((kind) => isNonEmptyList(mapGet(block, kind))),
  };
}

/** The metadata block as sops 3.10–3.12 write it, for a file sealed to age recipients only. */
export function metadataTree(meta: Omit<SopsMetadata, 'otherKeyTypes'>): SopsMap {
  const entries: Array<[string, SopsValue]> = [];
  if (meta.age.length > 0) {
    entries.push([
      'age',
      meta.age.map((a) =>
        sopsMap([
          ['recipient', a.recipient],
          ['enc', a.enc],
        ]),
      ),
    ]);
  }
  entries.push(['lastmodified', meta.lastModified], ['mac', meta.mac]);
  const ruleKind: CryptRuleKind = meta.rule.kind;
  entries.push([ruleKind, meta.rule.value]);
  if (meta.macOnlyEncrypted) entries.push(['mac_only_encrypted', true]);
  entries.push(['version', meta.version]);
  return sopsMap(entries);
}
