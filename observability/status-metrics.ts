// The metrics of the status reporter; the registry that owns them lives with the dashboard.
import type { Counter } from 'prom-client';

export interface StatusMetrics {
  /** Status patches sent, by kind and outcome (written, gone = object deleted, failed). */
  statusWrites: Counter<'kind' | 'outcome'>;
}
