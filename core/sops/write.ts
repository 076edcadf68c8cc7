// Writing a SOPS YAML file from plaintext documents, given everything random already chosen (data key,
// sealed age entries, IVs, time): deterministic, so tests can reproduce real sops files byte for byte.
// The file is read back before it is returned: a tree that would not read back as itself is refused
// rather than committed.
import { encryptValue } from './cipher.js';
import { SopsInputError } from './errors.js';
import { lastModifiedAad } from './go-format.js';
import type { IvStash } from './iv-stash.js';
import { metadataTree, SOPS_FORMAT_VERSION, type AgeEntry } from './metadata.js';
import { encryptsPath, type CryptRule } from './rules.js';
import { sameTree, sopsMap, type SopsMap } from './tree.js';
import { encryptDocuments } from './walk.js';
import { emitYaml } from './yaml-emit.js';
import { readYaml } from './yaml-read.js';

export interface WriteParams {
  readonly dataKey: Uint8Array;
  /** The data key sealed to each recipient. */
  readonly age: readonly AgeEntry[];
  /** `YYYY-MM-DDTHH:MM:SSZ` (formatLastModified). */
  readonly lastModified: string;
  readonly rule: CryptRule;
  readonly macOnlyEncrypted?: boolean;
  /** IVs to reuse for values (see iv-stash.ts); fresh random IVs for the rest. */
  readonly iv?: IvStash;
  /** The MAC's IV, for byte-exact reproduction in tests only. */
  readonly macIv?: Uint8Array;
  /** YAML indentation, 2 by default (sops's own default is 4; Kubernetes repositories and Flux's examples use 2). */
  readonly indent?: number;
  readonly version?: string;
}

export function writeSopsYaml(documents: readonly SopsMap[], params: WriteParams): string {
  if (documents.length === 0) throw new SopsInputError('there is no document to write');
  for (const doc of documents) {
    if (doc.entries.some(([k]) => k === 'sops')) throw new SopsInputError("the key 'sops' is reserved for SOPS metadata");
  }
  const aad = lastModifiedAad(params.lastModified);
  if (aad !== params.lastModified) throw new SopsInputError(`lastmodified must be YYYY-MM-DDTHH:MM:SSZ, not ${JSON.stringify(params.lastModified)}`);
  const macOnlyEncrypted = params.macOnlyEncrypted ?? false;
  const encrypted = encryptDocuments(documents, {
    key: params.dataKey,
    encrypts: encryptsPath(params.rule),
    macOnlyEncrypted,
    ...(params.iv ? { iv: params.iv } : {}),
  });
  const metadata = metadataTree({
    age: params.age,
    lastModified: params.lastModified,
    mac: encryptValue(encrypted.mac, params.dataKey, aad, params.macIv),
    rule: params.rule,
    macOnlyEncrypted,
    version: params.version ?? SOPS_FORMAT_VERSION,
  });
  // sops appends the same metadata block to every document.
  const withMetadata = encrypted.documents.map((doc) => sopsMap([...doc.entries, ['sops', metadata]]));
  const text = emitYaml(withMetadata, params.indent ?? 2);
  const back = readYaml(text).documents;
  if (back.length !== withMetadata.length || !back.every((doc, i) => sameTree(doc, withMetadata[i]!))) {
    throw new SopsInputError('the object cannot be written as YAML that reads back unchanged');
  }
  return text;
}
