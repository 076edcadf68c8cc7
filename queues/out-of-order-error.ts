// The error of a write that reached its writer after a newer version of its object was committed
// (workers/write/out-of-order.ts decides when). Unrecoverable: a retry cannot bring the version back into
// the history, so BullMQ keeps it as a dead letter at once; target progress counts these apart.
import { UnrecoverableError } from 'bullmq';

/** How the error of such a dead letter begins. */
export const OUT_OF_ORDER_PREFIX = 'out of order:';

export class OutOfOrderError extends UnrecoverableError {
  constructor(
    readonly clusterId: string,
    message: string,
  ) {
    super(`${OUT_OF_ORDER_PREFIX} ${message}`);
    this.name = 'OutOfOrderError';
  }
}
