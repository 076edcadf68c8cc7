// One value's encryption, as sops's aes/cipher.go does it: AES-256-GCM with the file's data key, a 32-byte
// random IV, the value's path as AAD, written as `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`. The plaintext
// is the Go text of the value (see go-format.ts); the type says how to read it back. Empty strings are
// never encrypted: sops writes them as they are, and its parser needs non-empty data.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SopsInputError, SopsValueError } from './errors.js';
import { canonicalTimeText, formatFloatF, parseGoBool, parseGoFloat, parseGoInt } from './go-format.js';
import type { SopsLeaf } from './tree.js';

/** sops's nonce size: longer than GCM's usual 12 bytes, which GCM allows (it hashes the IV). */
export const IV_BYTES = 32;
const TAG_BYTES = 16;

/** A comment's text, encrypted with `type:comment` (YAML and dotenv comments). */
export interface SopsComment {
  readonly type: 'comment';
  readonly text: string;
}

// Not anchored at the end, and greedy, exactly as sops's regexp: trailing text after `]` is ignored there too.
const ENC_VALUE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/s;

/** Whether a string has the shape of an encrypted value. */
export function isEncryptedValue(value: string): boolean {
  return ENC_VALUE.test(value);
}

/** Go's base64.StdEncoding decoding: padded standard alphabet; CR and LF are skipped. */
function decodeStdBase64(text: string, path: string, field: string): Buffer {
  const clean = text.replace(/[\r\n]/g, '');
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) {
    throw new SopsValueError(path, `the ${field} of the encrypted value at '${path}' is not padded standard base64`);
  }
  return Buffer.from(clean, 'base64');
}

function plaintextOf(value: Exclude<SopsLeaf, null> | SopsComment): { bytes: Buffer; type: string } {
  if (typeof value === 'string') return { bytes: Buffer.from(value, 'utf8'), type: 'str' };
  if (typeof value === 'boolean') return { bytes: Buffer.from(value ? 'True' : 'False'), type: 'bool' };
  switch (value.type) {
    case 'int':
      return { bytes: Buffer.from(value.value.toString()), type: 'int' };
    case 'float':
      return { bytes: Buffer.from(formatFloatF(value.value)), type: 'float' };
    case 'time':
      return { bytes: Buffer.from(value.text), type: 'time' };
    case 'bytes':
      // sops reads `type:bytes` but cannot encrypt bytes (cipher.go Encrypt has no case for them).
      throw new SopsInputError('raw bytes cannot be encrypted as a SOPS value');
    case 'comment':
      return { bytes: Buffer.from(value.text, 'utf8'), type: 'comment' };
  }
}

/**
 * Encrypts one value. `iv` is for tests that reproduce a file byte for byte; leave it out otherwise.
 * An empty string or comment comes back as '' (sops leaves those unencrypted).
 */
export function encryptValue(value: Exclude<SopsLeaf, null> | SopsComment, key: Uint8Array, aad: string, iv?: Uint8Array): string {
  const { bytes, type } = plaintextOf(value);
  if (type === 'str' || type === 'comment') {
    if (bytes.length === 0) return '';
  }
  const nonce = iv ?? randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(bytes), cipher.final()]);
  const tag = cipher.getAuthTag();
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
  return `ENC[AES256_GCM,data:${b64(data)},iv:${b64(nonce)},tag:${b64(tag)},type:${type}]`;
}

/**
 * Decrypts one value (cipher.go Decrypt). '' decrypts to ''. Throws SopsValueError naming `aad` when the
 * text is not an encrypted value, authentication fails, or the plaintext does not parse as its type.
 */
export function decryptValue(text: string, key: Uint8Array, aad: string): Exclude<SopsLeaf, null> | SopsComment {
  if (text === '') return '';
  const m = ENC_VALUE.exec(text);
  if (!m) throw new SopsValueError(aad, `the value at '${aad}' is not an encrypted value`);
  const data = decodeStdBase64(m[1]!, aad, 'data');
  const iv = decodeStdBase64(m[2]!, aad, 'iv');
  const tag = decodeStdBase64(m[3]!, aad, 'tag');
  const type = m[4]!;
  if (iv.length === 0) throw new SopsValueError(aad, `the encrypted value at '${aad}' has an empty IV`);
  // Go's GCM.Open takes the last 16 bytes of data||tag as the tag, whatever the field split says.
  const sealed = Buffer.concat([data, tag]);
  if (sealed.length < TAG_BYTES) throw new SopsValueError(aad, `the encrypted value at '${aad}' is too short`);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SopsValueError(aad, `the value at '${aad}' failed authentication: it was changed, moved, or encrypted with another data key`);
  }
  const textValue = plain.toString('utf8');
  const bad = (what: string): never => {
    throw new SopsValueError(aad, `the value at '${aad}' is not a valid ${what}`);
  };
  switch (type) {
    case 'str':
      return textValue;
    case 'int': {
      const n = parseGoInt(textValue);
      return n === undefined ? bad('int') : { type: 'int', value: n };
    }
    case 'float': {
      const f = parseGoFloat(textValue);
      return f === undefined ? bad('float') : { type: 'float', value: f };
    }
    case 'bool': {
      const b = parseGoBool(textValue);
      return b === undefined ? bad('bool') : b;
    }
    case 'time': {
      const t = canonicalTimeText(textValue);
      return t === undefined ? bad('time') : { type: 'time', text: t };
    }
    case 'bytes':
      return { type: 'bytes', value: new Uint8Array(plain) };
    case 'comment':
      return { type: 'comment', text: textValue };
    default:
      throw new SopsValueError(aad, `the value at '${aad}' has the unknown type '${type}'`);
  }
}
