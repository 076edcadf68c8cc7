// Kubernetes label and field selectors, as the API server reads them from a request's `labelSelector` and
// `fieldSelector` parameters, and their evaluation against an object's labels and fields. The writer needs
// them for a `deletecollection` recorded without its response (audit level Metadata): of the files of the
// type in that namespace, only those its selectors select went. Pure.
//
// Label selectors (k8s.io/apimachinery/pkg/labels): requirements joined by `,`, each one of
//   key=value  key==value  key!=value  key in (v1,v2)  key notin (v1,v2)  key  !key  key>n  key<n
// with the API server's meaning: `!=` and `notin` also select objects without the key; `in`, `=`, `==`
// `>` and `<` need it. An empty selector selects everything.
// Field selectors (k8s.io/apimachinery/pkg/fields): `field=value`, `field==value`, `field!=value` joined
// by `,`, where `\` escapes `\`, `,` and `=` in a value.

export type LabelOperator = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!' | '>' | '<';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  /** Empty for exists and `!`; one value for `=`, `==`, `!=`, `>`, `<`. */
  values: string[];
}

export interface FieldRequirement {
  field: string;
  operator: '=' | '==' | '!=';
  value: string;
}

/** A selector the API server would have refused: the message names where. */
export class SelectorSyntaxError extends Error {
  override readonly name = 'SelectorSyntaxError';
}

/** The longest selector kept from a request (the API server bounds the URL far below anything harmful). */
export const MAX_SELECTOR_LENGTH = 4096;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function keyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key ${JSON.stringify(key)}: its prefix is not a DNS subdomain`;
  if (name.length > 63 || !QUALIFIED_NAME.test(name)) return `label key ${JSON.stringify(key)} is not a qualified name`;
  return undefined;
}

function valueProblem(value: string): string | undefined {
  return value.length > 63 || !LABEL_VALUE.test(value) ? `label value ${JSON.stringify(value)} is not a valid label value` : undefined;
}

type Token =
  | { kind: 'identifier'; text: string }
  | { kind: 'op'; text: '=' | '==' | '!=' | '!' | '>' | '<' | '(' | ')' | ',' }
  | { kind: 'end' };

/** Characters that end an identifier (as the API server's lexer has them). */
const SPECIAL = new Set([' ', '\t', '\n', '\r', ',', '=', '!', '(', ')', '<', '>']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
    } else if (ch === '=' && text[i + 1] === '=') {
      tokens.push({ kind: 'op', text: '==' });
      i += 2;
    } else if (ch === '!' && text[i + 1] === '=') {
      tokens.push({ kind: 'op', text: '!=' });
      i += 2;
    } else if (SPECIAL.has(ch)) {
      tokens.push({ kind: 'op', text: ch as '=' | '!' | '(' | ')' | ',' | '<' | '>' });
      i++;
    } else {
      let j = i;
      while (j < text.length && !SPECIAL.has(text[j]!)) j++;
      tokens.push({ kind: 'identifier', text: text.slice(i, j) });
      i = j;
    }
  }
  tokens.push({ kind: 'end' });
  return tokens;
}

const isOp = (t: Token, text: string): boolean => t.kind === 'op' && t.text === text;
const describe = (t: Token) => (t.kind === 'end' ? 'the end' : JSON.stringify(t.text));

/** Parses a label selector; throws SelectorSyntaxError for one the API server refuses. '' selects everything. */
export function parseLabelSelector(text: string): LabelRequirement[] {
  if (text.length > MAX_SELECTOR_LENGTH) throw new SelectorSyntaxError(`label selector is longer than ${MAX_SELECTOR_LENGTH} characters`);
  const tokens = tokenize(text);
  let at = 0;
  const peek = () => tokens[at]!;
  const next = () => tokens[at++]!;
  const fail = (what: string): never => {
    throw new SelectorSyntaxError(`label selector ${JSON.stringify(text)}: ${what}`);
  };
  const requirements: LabelRequirement[] = [];
  if (peek().kind === 'end') return requirements;
  for (;;) {
    let token = next();
    let negated = false;
    if (token.kind === 'op' && token.text === '!') {
      negated = true;
      token = next();
    }
    if (token.kind !== 'identifier') fail(`found ${describe(token)}, expected a label key`);
    const key = (token as { text: string }).text;
    const keyIssue = keyProblem(key);
    if (keyIssue) fail(keyIssue);
    const after = peek();
    if (negated || after.kind === 'end' || (after.kind === 'op' && after.text === ',')) {
      if (negated && !(after.kind === 'end' || (after.kind === 'op' && after.text === ','))) fail(`found ${describe(after)} after !${key}`);
      requirements.push({ key, operator: negated ? '!' : 'exists', values: [] });
    } else {
      const op = next();
      let operator: LabelOperator;
      if (op.kind === 'identifier' && (op.text === 'in' || op.text === 'notin')) operator = op.text;
      else if (op.kind === 'op' && (op.text === '=' || op.text === '==' || op.text === '!=' || op.text === '>' || op.text === '<')) operator = op.text;
      else operator = fail(`found ${describe(op)} after ${key}, expected an operator (=, ==, !=, in, notin, >, <)`);
      const values: string[] = [];
      if (operator === 'in' || operator === 'notin') {
        const open = next();
        if (!isOp(open, '(')) fail(`found ${describe(open)}, expected ( after ${operator}`);
        // As the API server reads them: `()` is the empty value, and so is an empty place between commas.
        if (isOp(peek(), ')')) {
          next();
          values.push('');
        } else {
          for (;;) {
            const t = next();
            if (t.kind === 'identifier') {
              values.push(t.text);
              const sep = next();
              if (isOp(sep, ')')) break;
              if (!isOp(sep, ',')) fail(`found ${describe(sep)} in the values of ${key} ${operator}, expected , or )`);
              if (isOp(peek(), ')')) {
                next();
                values.push('');
                break;
              }
            } else if (isOp(t, ',')) {
              values.push('');
              if (isOp(peek(), ')')) {
                next();
                break;
              }
            } else fail(`found ${describe(t)} in the values of ${key} ${operator}`);
          }
        }
      } else {
        const v = peek();
        // `key=` is the empty value; so is `key=` followed by `,`.
        if (v.kind === 'identifier') {
          next();
          values.push(v.text);
        } else if (v.kind === 'end' || (v.kind === 'op' && v.text === ',')) values.push('');
        else fail(`found ${describe(v)} after ${key}${operator}, expected a value`);
        if (operator === '>' || operator === '<') {
          if (!/^-?\d+$/.test(values[0]!)) fail(`${key}${operator}${values[0]}: the value must be an integer`);
        }
      }
      if (operator !== '>' && operator !== '<') {
        for (const value of values) {
          const issue = valueProblem(value);
          if (issue) fail(issue);
        }
      }
      requirements.push({ key, operator, values });
    }
    const sep = next();
    if (sep.kind === 'end') break;
    if (!(sep.kind === 'op' && sep.text === ',')) fail(`found ${describe(sep)}, expected , between requirements`);
    const following = peek();
    if (following.kind === 'end' || (following.kind === 'op' && following.text === ',')) fail(`found ${describe(following)} after ",", expected a requirement`);
  }
  return requirements;
}

/** Whether `labels` satisfy every requirement (the API server's semantics, see the top of this file). */
export function labelsMatch(requirements: readonly LabelRequirement[], labels: Readonly<Record<string, string>>): boolean {
  return requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const value = has ? labels[r.key]! : undefined;
    switch (r.operator) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case '=':
      case '==':
      case 'in':
        return has && r.values.includes(value!);
      case '!=':
      case 'notin':
        return !has || !r.values.includes(value!);
      case '>':
      case '<': {
        if (!has || !/^-?\d+$/.test(value!)) return false;
        const [a, b] = [BigInt(value!), BigInt(r.values[0]!)];
        return r.operator === '>' ? a > b : a < b;
      }
    }
  });
}

/** Splits on `sep` where it is not escaped by `\`; keeps the escapes. */
function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && i + 1 < text.length) {
      current += ch + text[i + 1]!;
      i++;
    } else if (ch === sep) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(value: string, selector: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\') {
      const next = value[i + 1];
      if (next !== '\\' && next !== ',' && next !== '=') throw new SelectorSyntaxError(`field selector ${JSON.stringify(selector)}: invalid escape in ${JSON.stringify(value)}`);
      out += next;
      i++;
    } else if (ch === ',' || ch === '=') {
      throw new SelectorSyntaxError(`field selector ${JSON.stringify(selector)}: unescaped ${ch} in ${JSON.stringify(value)}`);
    } else out += ch;
  }
  return out;
}

/** Parses a field selector; throws SelectorSyntaxError for one the API server refuses. '' selects everything. */
export function parseFieldSelector(text: string): FieldRequirement[] {
  if (text.length > MAX_SELECTOR_LENGTH) throw new SelectorSyntaxError(`field selector is longer than ${MAX_SELECTOR_LENGTH} characters`);
  const requirements: FieldRequirement[] = [];
  // As the API server reads it: terms split at unescaped commas, empty terms ignored, and in each term the
  // first place where `!=`, `==` or `=` begins splits field from value (the field is not trimmed).
  for (const term of splitUnescaped(text, ',')) {
    if (term === '') continue;
    let found: FieldRequirement | undefined;
    for (let i = 0; i < term.length && !found; i++) {
      const operator = (['!=', '==', '='] as const).find((op) => term.startsWith(op, i));
      if (operator) found = { field: term.slice(0, i), operator, value: unescapeFieldValue(term.slice(i + operator.length), text) };
    }
    if (!found) throw new SelectorSyntaxError(`field selector ${JSON.stringify(text)}: ${JSON.stringify(term)} has no operator (=, ==, !=)`);
    requirements.push(found);
  }
  return requirements;
}

/**
 * Whether an object satisfies every requirement. `equals(field, value)` says whether the object's `field` is
 * `value`, or undefined for a field the caller cannot read: the requirement then counts as met when
 * `unknownMatches`, else as not met (the writer reads `metadata.name` and `metadata.namespace` of a file
 * only; workers/write/collection-files.ts says why an unknown field counts as met there).
 */
export function fieldsMatch(requirements: readonly FieldRequirement[], equals: (field: string, value: string) => boolean | undefined, unknownMatches: boolean): boolean {
  return requirements.every((r) => {
    const equal = equals(r.field, r.value);
    if (equal === undefined) return unknownMatches;
    return r.operator === '!=' ? !equal : equal;
  });
}

/** The problem with a selector, or undefined when the API server would take it (for schemas). */
export function selectorProblem(kind: 'label' | 'field', text: string): string | undefined {
  try {
    if (kind === 'label') parseLabelSelector(text);
    else parseFieldSelector(text);
    return undefined;
  } catch (err) {
    if (err instanceof SelectorSyntaxError) return err.message;
    throw err;
  }
}

/** The `labelSelector` and `fieldSelector` of a request URI (`/api/v1/namespaces/x/configmaps?labelSelector=…`). */
export function selectorsOfRequestURI(requestURI: string): { labelSelector?: string; fieldSelector?: string } {
  const q = requestURI.indexOf('?');
  if (q < 0) return {};
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(requestURI.slice(q + 1));
  } catch {
    return {};
  }
  const out: { labelSelector?: string; fieldSelector?: string } = {};
  const label = params.get('labelSelector');
  const field = params.get('fieldSelector');
  if (label !== null && label !== '') out.labelSelector = label;
  if (field !== null && field !== '') out.fieldSelector = field;
  return out;
}
