// Checking age keys where nothing may wait: configuration is resolved synchronously, so a GitTarget's
// recipients and its service identity are checked (bech32 checksum, key type, length) and the identity's
// recipient is derived here without the async age library. X25519 only for the identity: it is what
// `age-keygen` makes and what Flux's kustomize-controller reads.
import { createPrivateKey, createPublicKey } from 'node:crypto';

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

function convertBits(data: readonly number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & max);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max);
  } else if (bits >= from || ((acc << (to - bits)) & max) !== 0) return undefined;
  return out;
}

/** Bech32 (BIP 173, without its 90-character limit, as age uses it): hrp and bytes, or undefined when malformed. */
export function bech32Decode(text: string): { hrp: string; bytes: Uint8Array } | undefined {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return undefined;
  const lower = text.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (sep < 1 || sep + 7 > lower.length) return undefined;
  const hrp = lower.slice(0, sep);
  const values: number[] = [];
  for (const c of lower.slice(sep + 1)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) return undefined;
    values.push(v);
  }
  if (polymod([...hrpExpand(hrp), ...values]) !== 1) return undefined;
  const bytes = convertBits(values.slice(0, -6), 5, 8, false);
  return bytes ? { hrp, bytes: Uint8Array.from(bytes) } : undefined;
}

export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  const data = convertBits([...bytes], 8, 5, true)!;
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >> (5 * (5 - i))) & 31);
  return `${hrp}1${[...data, ...checksum].map((v) => CHARSET[v]).join('')}`;
}

/** Why `recipient` is not an age recipient sops can seal to (`age1…` X25519, `age1pq1…` hybrid), or undefined. */
export function ageRecipientProblem(recipient: string): string | undefined {
  if (recipient !== recipient.trim() || recipient === '') return 'is empty or has surrounding spaces';
  if (!recipient.startsWith('age1')) return 'is not an age recipient (it must begin with age1)';
  const decoded = bech32Decode(recipient);
  if (!decoded) return 'is not valid bech32 (a character is wrong or missing)';
  if (decoded.hrp === 'age' && decoded.bytes.length === 32) return undefined;
  if (decoded.hrp === 'age1pq' && decoded.bytes.length > 32) return undefined;
  return `is not an X25519 (age1…) or hybrid (age1pq1…) recipient`;
}

// The PKCS#8 prefix of a raw X25519 private key (RFC 8410).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * The recipient (`age1…`) of an X25519 age identity (`AGE-SECRET-KEY-1…`), or a problem saying why the
 * text is none. Never puts the identity into the problem.
 */
export function recipientOfIdentity(identity: string): { ok: true; recipient: string } | { ok: false; problem: string } {
  const text = identity.trim();
  if (text.startsWith('AGE-SECRET-KEY-PQ-1')) return { ok: false, problem: 'is a post-quantum age identity; only X25519 identities (age-keygen) are supported here' };
  if (!text.startsWith('AGE-SECRET-KEY-1')) return { ok: false, problem: 'is not an age identity (it must begin with AGE-SECRET-KEY-1, as age-keygen writes it)' };
  const decoded = bech32Decode(text);
  if (!decoded || decoded.hrp !== 'age-secret-key-' || decoded.bytes.length !== 32) return { ok: false, problem: 'is not a valid age identity (bad checksum or length)' };
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, decoded.bytes]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return { ok: true, recipient: bech32Encode('age', Uint8Array.from(spki.subarray(spki.length - 32))) };
}

/** The single identity of a key Secret's value: an age key file's text may hold comments (age-keygen writes two). */
export function singleIdentity(keyFileText: string): { ok: true; identity: string } | { ok: false; problem: string } {
  const lines = keyFileText
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) return { ok: false, problem: `holds ${lines.length} key lines; it must hold exactly one age identity (AGE-SECRET-KEY-1…)` };
  return { ok: true, identity: lines[0]! };
}
