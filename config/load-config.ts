// Reads a multi-document YAML file of configuration objects, validates each one and every reference
// between them, and reports ALL problems at once (by object and field), so an operator fixes a file in
// one round instead of one error per restart.
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { emptyConfigObjects, formatProblem, resolveConfig, type ConfigObjects } from './resolve-config.js';
import type { ResolvedConfig } from './resolved-config.js';
import { SCHEMA_BY_KIND, type ConfigKind } from './resource-schemas.js';
import { schemaProblems } from './schema-issues.js';

export { isValidBranchName } from './resolve-config.js';
export { issuePath } from './schema-issues.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export async function loadConfigFile(file: string): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read CONFIG_FILE: ${(err as Error).message}`]);
  }
  return parseConfig(text, file);
}

/** Parses and resolves configuration text; throws ConfigError listing every problem. */
export function parseConfig(text: string, source = 'configuration'): ResolvedConfig {
  const problems: string[] = [];
  const parsed = parseObjects(text, problems);
  const resolved = resolveConfig(parsed);
  // "X is not ready" points at a cause the list already holds: in a file, the cause alone is enough.
  problems.push(...resolved.problems.filter((p) => !p.reason.endsWith('NotReady')).map(formatProblem));
  // Outside a cluster there is no status to report a broken object in: the file must be right as a whole.
  if (problems.length > 0) throw new ConfigError(source, problems);
  return resolved.config;
}

function parseObjects(text: string, problems: string[]): ConfigObjects {
  const parsed = emptyConfigObjects();
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) {
    problems.push('the file is not a YAML stream');
    return parsed;
  }
  docs.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      problems.push(`document ${index + 1}: YAML error: ${doc.errors[0]?.message}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document between separators
    const obj = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    const label = `document ${index + 1} (${String(obj.kind ?? '?')} ${String(obj.metadata?.namespace ? `${obj.metadata.namespace}/` : '')}${String(obj.metadata?.name ?? '?')})`;
    const kind = obj.kind as ConfigKind;
    // Own properties only: `kind: toString` must be an unknown kind, not Object.prototype's method.
    const schema: z.ZodType | undefined = typeof kind === 'string' && Object.hasOwn(SCHEMA_BY_KIND, kind) ? SCHEMA_BY_KIND[kind] : undefined;
    if (!schema) {
      problems.push(`${label}: kind: unknown kind, expected one of ${Object.keys(SCHEMA_BY_KIND).join(', ')}`);
      return;
    }
    // Strict, as kubectl's strict field validation: an unknown field (a typo, a newer version's) is named, not dropped.
    const result = schema.safeParse(value);
    if (!result.success) {
      for (const p of schemaProblems(schema, result.error.issues)) problems.push(`${label}: ${p.field}: ${p.message}`);
      return;
    }
    (parsed[kind] as unknown[]).push(result.data);
  });
  return parsed;
}

