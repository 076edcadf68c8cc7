// Which values of a SOPS file are encrypted: one rule from the metadata, tested against every key on the
// value's path (sops.go shouldBeEncrypted). With none, sops behaves as if `unencrypted_suffix: _unencrypted`
// were set. `encrypted_regex: ^(data|stringData)$` is the Kubernetes Secret rule Flux documents.
import { SopsUnsupportedError } from './errors.js';

export type CryptRuleKind = 'unencrypted_suffix' | 'encrypted_suffix' | 'unencrypted_regex' | 'encrypted_regex';
export const CRYPT_RULE_KINDS: readonly CryptRuleKind[] = ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex'];

export interface CryptRule {
  readonly kind: CryptRuleKind;
  readonly value: string;
}

export const DEFAULT_RULE: CryptRule = { kind: 'unencrypted_suffix', value: '_unencrypted' };
/** The rule for Kubernetes Secrets: only what is under `data` or `stringData` is encrypted. */
export const SECRET_RULE: CryptRule = { kind: 'encrypted_regex', value: '^(data|stringData)$' };

/** Compiles a Go regexp as a JS one; a leading `(?flags)` group of i, m, s becomes JS flags. */
function goRegexp(source: string): RegExp {
  const m = /^\(\?([ims]+)\)/.exec(source);
  const flags = m ? [...new Set(m[1])].join('') : '';
  const body = m ? source.slice(m[0].length) : source;
  try {
    return new RegExp(body, `${flags}u`);
  } catch {
    try {
      return new RegExp(body, flags);
    } catch {
      throw new SopsUnsupportedError(`the crypt rule regexp ${JSON.stringify(source)} is not one this reader can evaluate`);
    }
  }
}

/** A predicate over a value's path: true when sops encrypts a value there. */
export function encryptsPath(rule: CryptRule): (path: readonly string[]) => boolean {
  switch (rule.kind) {
    case 'unencrypted_suffix':
      return (path) => !path.some((k) => k.endsWith(rule.value));
    case 'encrypted_suffix':
      return (path) => path.some((k) => k.endsWith(rule.value));
    case 'unencrypted_regex': {
      const re = goRegexp(rule.value);
      return (path) => !path.some((k) => re.test(k));
    }
    case 'encrypted_regex': {
      const re = goRegexp(rule.value);
      return (path) => path.some((k) => re.test(k));
    }
  }
}
