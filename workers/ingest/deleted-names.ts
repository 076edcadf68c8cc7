// What ingest keeps of a deletecollection: the names of the objects it deleted, when the audit level recorded
// the API server's answer (a List of the deleted objects), and the request's selectors. Only names: the answer
// to a deletecollection of Secrets is a SecretList of plaintext Secrets, and nothing of it but the names is
// stored anywhere. Each name will become a file name, so it is checked like an objectRef name; an item that
// names another namespace than the request, or no usable name, refuses the event (it cannot be what it claims).
import { MAX_DELETED_NAMES } from '../../core/contracts.js';
import { MAX_SELECTOR_LENGTH, selectorProblem, selectorsOfRequestURI } from '../../core/selectors.js';
import { pathSegmentProblem } from '../../core/audit-event-schema.js';
import { isRecord } from '../../core/json.js';

export type DeletedNames =
  /** names: absent when the answer was not recorded (no List), or held more than MAX_DELETED_NAMES items. */
  | { ok: true; names?: string[]; bytes: number }
  | { ok: false; error: string };

/**
 * The names of the items of a deletecollection's answer (`responseObject.items`), each checked; `namespace` is
 * the request's ('' for a cluster-scoped type). An answer that is no List (level Metadata or Request, or a
 * Status) gives no names.
 */
export function deletedNamesOf(responseObject: unknown, namespace: string): DeletedNames {
  if (!isRecord(responseObject) || !Array.isArray(responseObject.items)) return { ok: true, bytes: 0 };
  const items: unknown[] = responseObject.items;
  // Too many to carry: the router lists the cluster instead, as for an answer not recorded.
  if (items.length > MAX_DELETED_NAMES) return { ok: true, bytes: 0 };
  const names: string[] = [];
  for (let i = 0; i < items.length; i++) {
    const where = `responseObject.items[${i}].metadata`;
    const metadata = isRecord(items[i]) ? (items[i] as Record<string, unknown>).metadata : undefined;
    const name = isRecord(metadata) ? metadata.name : undefined;
    if (typeof name !== 'string' || name === '') return { ok: false, error: `${where}.name: a deleted object without a name` };
    const problem = pathSegmentProblem(name);
    if (problem) return { ok: false, error: `${where}.name: ${problem}` };
    const itemNamespace = isRecord(metadata) && typeof metadata.namespace === 'string' ? metadata.namespace : '';
    if (itemNamespace !== '' && itemNamespace !== namespace) {
      return {
        ok: false,
        error: `${where}.namespace is ${JSON.stringify(itemNamespace)}, but the event's objectRef ${namespace === '' ? 'names no namespace' : `names namespace ${JSON.stringify(namespace)}`}`,
      };
    }
    names.push(name);
  }
  return { ok: true, names, bytes: Buffer.byteLength(JSON.stringify(names), 'utf8') };
}

/**
 * The selectors of a deletecollection's request URI that the API server would read. One that does not parse
 * here (or is longer than MAX_SELECTOR_LENGTH) is left out: the API server answered the request, so it read
 * it; without it, a write that lists the cluster removes the files of every object of the type that is gone
 * (never one still there), only with a broader attribution.
 */
export function requestSelectors(requestURI: string): { labelSelector?: string; fieldSelector?: string } | undefined {
  const found = selectorsOfRequestURI(requestURI);
  const out: { labelSelector?: string; fieldSelector?: string } = {};
  if (found.labelSelector !== undefined && found.labelSelector.length <= MAX_SELECTOR_LENGTH && !selectorProblem('label', found.labelSelector)) out.labelSelector = found.labelSelector;
  if (found.fieldSelector !== undefined && found.fieldSelector.length <= MAX_SELECTOR_LENGTH && !selectorProblem('field', found.fieldSelector)) out.fieldSelector = found.fieldSelector;
  return out.labelSelector === undefined && out.fieldSelector === undefined ? undefined : out;
}
