// The metrics a partition writer reports; the registry that owns them lives with the dashboard.
import type { Counter, Histogram } from 'prom-client';

export interface WriterMetrics {
  commits: Counter<'partition'>;
  pushDuration: Histogram<'partition'>;
  ownershipChanges: Counter<'partition'>;
  eventsOutOfOrder: Counter<'cluster'>;
  /** Files removed by the commits of collection writes: reason `deletecollection` or `namespace` (a deleted namespace). */
  filesDeleted: Counter<'cluster' | 'reason'>;
}
