// What the live configuration source hands to the rest of the service each time the configuration
// changes: the resolved configuration, the problems of each object, and the objects as the cluster holds
// them (generation and current status), so the status reporter can write conditions only where they changed.
import type { ConfigProblem } from '../resolve-config.js';
import type { ResolvedConfig } from '../resolved-config.js';
import type { ConfigKind } from '../resource-schemas.js';

/** The kinds that have a status subresource (all of ours but Secret). */
export type StatusKind = Exclude<ConfigKind, 'Secret'>;

export interface ObservedObject {
  kind: StatusKind;
  /** `name` for cluster-scoped objects, `namespace/name` otherwise (as ConfigProblem.key). */
  key: string;
  name: string;
  namespace?: string;
  /** metadata.generation; what the conditions' observedGeneration reports. */
  generation: number;
  /** The status the object has now in the cluster (undefined: none yet). */
  status?: Record<string, unknown>;
}

export interface ConfigSnapshot {
  config: ResolvedConfig;
  problems: ConfigProblem[];
  /** Every configuration object of the cluster, valid or not. Empty when configured from a file. */
  observed: ObservedObject[];
}

/** Where the running service gets its configuration: a file (fixed) or the cluster (live). */
export interface ConfigSource {
  /** The latest snapshot; there is always one after start resolved. */
  current(): ConfigSnapshot;
  /** Called with every snapshot whose configuration changed, after the initial one. */
  onChange(listener: (snapshot: ConfigSnapshot) => void): void;
  /** Called with a snapshot in which only the objects' status changed (what the status reporter compares with). */
  onObserved(listener: (snapshot: ConfigSnapshot) => void): void;
  /** Resolve again now (for example after discovery found new resource types). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** A configuration that never changes: a CONFIG_FILE, the demo, a test's. */
export function fixedConfigSource(config: ResolvedConfig): ConfigSource {
  const snapshot: ConfigSnapshot = { config, problems: [], observed: [] };
  return { current: () => snapshot, onChange: () => undefined, onObserved: () => undefined, refresh: async () => undefined, stop: async () => undefined };
}
