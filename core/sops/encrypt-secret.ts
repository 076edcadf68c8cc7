// Sealing a Kubernetes Secret as a SOPS file that `sops decrypt` and Flux's kustomize-controller read
// unchanged: only values under `data` and `stringData` are encrypted (Flux's documented
// `encrypted_regex: ^(data|stringData)$`), the rest stays readable in Git; a fresh 32-byte data key,
// sealed to every age recipient; fresh IVs; `lastmodified` in whole seconds.
import { randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES, sealDataKey } from './age-keys.js';
import { SopsInputError } from './errors.js';
import { formatLastModified } from './go-format.js';
import { SECRET_RULE } from './rules.js';
import { fromPlain, isSopsMap, type SopsMap } from './tree.js';
import { writeSopsYaml } from './write.js';

export interface EncryptSecretOptions {
  /** age recipients (`age1…`, `age1pq1…`); each gets its own copy of the data key. */
  readonly recipients: readonly string[];
  /** The file's `lastmodified`; now by default. */
  readonly now?: Date;
  /** YAML indentation, 2 by default. */
  readonly indent?: number;
}

/** The object as the single document of a SOPS file, in its own key order. */
export function secretDocument(object: Record<string, unknown>): SopsMap {
  const doc = fromPlain(object);
  if (!isSopsMap(doc)) throw new SopsInputError('a Secret must be an object');
  return doc;
}

/** Encrypts a Secret-like object for the recipients; returns the YAML file text. */
export async function encryptSecret(object: Record<string, unknown>, options: EncryptSecretOptions): Promise<string> {
  const document = secretDocument(object);
  const dataKey = randomBytes(DATA_KEY_BYTES);
  const age = await sealDataKey(dataKey, options.recipients);
  return writeSopsYaml([document], {
    dataKey,
    age,
    lastModified: formatLastModified(options.now ?? new Date()),
    rule: SECRET_RULE,
    ...(options.indent !== undefined ? { indent: options.indent } : {}),
  });
}
