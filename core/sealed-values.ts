// A Secret's values between the webhook and the writer of a target that keeps them (encryption): sealed
// with age for the service identities before the job is stored, so Valkey, Bull Board and every log line
// hold ciphertext only; opened by the writer with its target's identity, put back into the object and
// written as a SOPS file. Pure: age sealing is computation (random IVs and file keys), no I/O.
import { Decrypter, Encrypter } from 'age-encryption';
import { z } from 'zod';
import type { SealedValues } from './contracts.js';
import { isRecord, putOwn } from './json.js';
import { isSecretObject, isSecretRef, REDACTED_VALUE, type SecretRefLike } from './redact-secret.js';

/** The string values of a Secret's `data` and `stringData`, by key. */
export interface SecretValues {
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const SecretValuesSchema = z.strictObject({
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});

const FIELDS = ['data', 'stringData'] as const;

function stringEntries(values: unknown): Record<string, string> | undefined {
  if (!isRecord(values)) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'string') continue;
    putOwn(out, key, value);
    any = true;
  }
  return any ? out : undefined;
}

/**
 * The values of `object` when it is itself a core Secret (by its kind, or by the request's objectRef), or
 * undefined. Only the top-level Secret: one embedded in a List or a template stays REDACTED.
 */
export function secretValuesOf(object: Record<string, unknown>, objectRef?: SecretRefLike | null): SecretValues | undefined {
  if (!isSecretRef(objectRef) && !isSecretObject(object)) return undefined;
  const out: SecretValues = {};
  for (const field of FIELDS) {
    const entries = stringEntries(object[field]);
    if (entries) out[field] = entries;
  }
  return out.data || out.stringData ? out : undefined;
}

/** Seals `values` for every recipient (age public keys): an envelope only their identities open. */
export async function sealSecretValues(values: SecretValues, recipients: readonly string[]): Promise<SealedValues> {
  if (recipients.length === 0) throw new Error('sealing needs at least one age recipient');
  const encrypter = new Encrypter();
  for (const r of recipients) encrypter.addRecipient(r);
  const sealed = await encrypter.encrypt(JSON.stringify(values));
  return { format: 'age-json-v1', recipients: [...recipients], ciphertext: Buffer.from(sealed).toString('base64') };
}

/** Why an envelope could not be opened; never carries a value. */
export class UnsealError extends Error {
  override readonly name = 'UnsealError';
}

/** Opens an envelope with one of `identities`; UnsealError when none opens it or what it holds is no set of values. */
export async function unsealSecretValues(sealed: SealedValues, identities: readonly string[]): Promise<SecretValues> {
  const decrypter = new Decrypter();
  for (const identity of identities) decrypter.addIdentity(identity);
  let text: string;
  try {
    text = await decrypter.decrypt(Buffer.from(sealed.ciphertext, 'base64'), 'text');
  } catch (err) {
    throw new UnsealError(
      `the Secret's sealed values do not open with this target's identity (sealed for ${sealed.recipients.join(', ')}): ${(err as Error).message}. ` +
        'Was the key Secret of spec.encryption.sops.keySecretRef changed after the event was received?',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UnsealError('the sealed values are not JSON');
  }
  const values = SecretValuesSchema.safeParse(parsed);
  if (!values.success) throw new UnsealError('the sealed values are not a Secret\'s data and stringData');
  return values.data;
}

/**
 * `object` (a sanitized Secret whose values read REDACTED) with its values put back: each key of `data`
 * and `stringData` takes its value from `values`; a key `values` lacks takes it from `fallback` (the file
 * written before), else stays REDACTED. Keys come from the object: it says which exist now.
 */
export function withSecretValues(object: Record<string, unknown>, values: SecretValues, fallback: SecretValues = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(object)) putOwn(out, key, object[key]);
  for (const field of FIELDS) {
    const current = object[field];
    if (!isRecord(current)) continue;
    const filled: Record<string, unknown> = {};
    for (const key of Object.keys(current)) {
      const value = (Object.hasOwn(values[field] ?? {}, key) ? values[field]![key] : undefined) ?? (Object.hasOwn(fallback[field] ?? {}, key) ? fallback[field]![key] : undefined);
      putOwn(filled, key, value ?? REDACTED_VALUE);
    }
    putOwn(out, field, filled);
  }
  return out;
}
