// What the live configuration source hands to the rest of the service each time the configuration
// changes: the resolved configuration, the problems of each object, and the objects as the cluster holds
// them (generation and current status), so the status reporter can write conditions only where they changed.
import type { ConfigProblem } from '../config/resolve-config.js';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { ConfigKind } from '../config/resource-schemas.js';

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
