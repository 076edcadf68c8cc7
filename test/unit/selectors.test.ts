import { describe, expect, it } from 'vitest';
import {
  fieldsMatch,
  labelsMatch,
  parseFieldSelector,
  parseLabelSelector,
  SelectorSyntaxError,
  selectorProblem,
  selectorsOfRequestURI,
} from '../../core/selectors.js';

const matches = (selector: string, labels: Record<string, string>) => labelsMatch(parseLabelSelector(selector), labels);

describe('parseLabelSelector', () => {
  it('reads every operator the API server knows, with spaces anywhere between tokens', () => {
    expect(parseLabelSelector(' a = b , c==d,e!=f, g in ( x , y ),h notin (z),i,!j, k>3,l<-2 ')).toEqual([
      { key: 'a', operator: '=', values: ['b'] },
      { key: 'c', operator: '==', values: ['d'] },
      { key: 'e', operator: '!=', values: ['f'] },
      { key: 'g', operator: 'in', values: ['x', 'y'] },
      { key: 'h', operator: 'notin', values: ['z'] },
      { key: 'i', operator: 'exists', values: [] },
      { key: 'j', operator: '!', values: [] },
      { key: 'k', operator: '>', values: ['3'] },
      { key: 'l', operator: '<', values: ['-2'] },
    ]);
  });

  it('reads prefixed keys, empty values and keywords used as values', () => {
    expect(parseLabelSelector('app.kubernetes.io/name=web,empty=,in=in,x in (),y in (a,),z in (,b)')).toEqual([
      { key: 'app.kubernetes.io/name', operator: '=', values: ['web'] },
      { key: 'empty', operator: '=', values: [''] },
      { key: 'in', operator: '=', values: ['in'] },
      { key: 'x', operator: 'in', values: [''] },
      { key: 'y', operator: 'in', values: ['a', ''] },
      { key: 'z', operator: 'in', values: ['', 'b'] },
    ]);
  });

  it('selects everything when empty', () => {
    expect(parseLabelSelector('')).toEqual([]);
    expect(parseLabelSelector('   ')).toEqual([]);
  });

  it.each([
    ['a=b,', 'after ","'],
    [',a=b', 'expected a label key'],
    ['a=b,,c', 'after ","'],
    ['a b', 'expected an operator'],
    ['!a=b', 'after !a'],
    ['a in b', 'expected ( after in'],
    ['a in (b', 'in the values of a in'],
    ['a in (b c)', 'expected , or )'],
    ['a=(b)', 'expected a value'],
    ['a>b', 'must be an integer'],
    ['-a=b', 'not a qualified name'],
    ['Foo_/a=b', 'prefix is not a DNS subdomain'],
    ['a=-b', 'not a valid label value'],
    [`a=${'v'.repeat(64)}`, 'not a valid label value'],
    ['a=b=c', 'expected , between requirements'],
  ])('refuses %j (%s)', (selector, message) => {
    expect(() => parseLabelSelector(selector)).toThrow(SelectorSyntaxError);
    expect(() => parseLabelSelector(selector)).toThrow(message);
  });
});

describe('labelsMatch', () => {
  const web = { app: 'web', tier: 'front', replicas: '3' };
  it('equality: = and == need the key with that value; != also selects objects without the key', () => {
    expect(matches('app=web', web)).toBe(true);
    expect(matches('app==web', web)).toBe(true);
    expect(matches('app=db', web)).toBe(false);
    expect(matches('app=web', {})).toBe(false);
    expect(matches('app!=db', web)).toBe(true);
    expect(matches('app!=web', web)).toBe(false);
    expect(matches('app!=web', {})).toBe(true);
  });

  it('sets: in needs the key with one of the values; notin also selects objects without the key', () => {
    expect(matches('app in (db,web)', web)).toBe(true);
    expect(matches('app in (db)', web)).toBe(false);
    expect(matches('app in (db)', {})).toBe(false);
    expect(matches('app notin (db)', web)).toBe(true);
    expect(matches('app notin (web,db)', web)).toBe(false);
    expect(matches('app notin (web)', {})).toBe(true);
  });

  it('existence, absence, and integer comparisons', () => {
    expect(matches('tier', web)).toBe(true);
    expect(matches('zone', web)).toBe(false);
    expect(matches('!zone', web)).toBe(true);
    expect(matches('!tier', web)).toBe(false);
    expect(matches('replicas>2', web)).toBe(true);
    expect(matches('replicas<3', web)).toBe(false);
    expect(matches('tier>2', web)).toBe(false); // not an integer
    expect(matches('zone<9', web)).toBe(false); // absent
  });

  it('every requirement must hold; the empty selector selects everything', () => {
    expect(matches('app=web,tier=front,!zone', web)).toBe(true);
    expect(matches('app=web,tier=back', web)).toBe(false);
    expect(matches('', {})).toBe(true);
  });

  it('an empty value matches the empty label value only', () => {
    expect(matches('a=', { a: '' })).toBe(true);
    expect(matches('a=', { a: 'x' })).toBe(false);
    expect(matches('a in ()', { a: '' })).toBe(true);
  });

  it('never reads inherited properties as labels', () => {
    expect(matches('constructor', {})).toBe(false);
    expect(matches('!toString', {})).toBe(true);
  });
});

describe('parseFieldSelector and fieldsMatch', () => {
  it('reads =, == and !=, splitting at the first operator; escapes \\, , and = in values; skips empty terms', () => {
    expect(parseFieldSelector('metadata.name=web,metadata.namespace==shop,status.phase!=Running,')).toEqual([
      { field: 'metadata.name', operator: '=', value: 'web' },
      { field: 'metadata.namespace', operator: '==', value: 'shop' },
      { field: 'status.phase', operator: '!=', value: 'Running' },
    ]);
    expect(parseFieldSelector('metadata.name=a\\,b\\=c\\\\d')).toEqual([{ field: 'metadata.name', operator: '=', value: 'a,b=c\\d' }]);
    expect(parseFieldSelector('')).toEqual([]);
  });

  it.each([
    ['metadata.name', 'no operator'],
    ['metadata.name=a=b', 'unescaped ='],
    ['metadata.name=a\\x', 'invalid escape'],
    ['metadata.name=a\\', 'invalid escape'],
  ])('refuses %j (%s)', (selector, message) => {
    expect(() => parseFieldSelector(selector)).toThrow(message);
  });

  it('evaluates known fields, and unknown ones as the caller says', () => {
    const equals = (field: string, value: string) => (field === 'metadata.name' ? value === 'web' : undefined);
    expect(fieldsMatch(parseFieldSelector('metadata.name=web'), equals, false)).toBe(true);
    expect(fieldsMatch(parseFieldSelector('metadata.name!=web'), equals, false)).toBe(false);
    expect(fieldsMatch(parseFieldSelector('metadata.name==db'), equals, false)).toBe(false);
    expect(fieldsMatch(parseFieldSelector('status.phase=Failed'), equals, true)).toBe(true);
    expect(fieldsMatch(parseFieldSelector('status.phase=Failed'), equals, false)).toBe(false);
  });
});

describe('selectors of a request', () => {
  it('takes labelSelector and fieldSelector from the request URI, decoded', () => {
    expect(selectorsOfRequestURI('/api/v1/namespaces/shop/configmaps?labelSelector=app%3Dweb%2Ctier+in+%28a%29&fieldSelector=metadata.name%21%3Dx&limit=5')).toEqual({
      labelSelector: 'app=web,tier in (a)',
      fieldSelector: 'metadata.name!=x',
    });
    expect(selectorsOfRequestURI('/api/v1/namespaces/shop/configmaps')).toEqual({});
    expect(selectorsOfRequestURI('/api/v1/namespaces/shop/configmaps?labelSelector=')).toEqual({});
  });

  it('names the problem of a selector the API server would refuse', () => {
    expect(selectorProblem('label', 'app=web')).toBeUndefined();
    expect(selectorProblem('label', 'app=')).toBeUndefined();
    expect(selectorProblem('label', 'a b')).toContain('expected an operator');
    expect(selectorProblem('field', 'x')).toContain('no operator');
  });
});
