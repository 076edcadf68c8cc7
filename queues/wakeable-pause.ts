// A sleep that stop() can cut short: loops that wait between attempts (a lease to take, a watch to
// reopen) must not hold a shutdown for the rest of their delay.

export interface WakeablePause {
  /** Resolves after `ms`, at once when woken, and at once when already stopping. */
  pause(ms: number): Promise<void>;
  /** Ends the pause in progress, if any. */
  wake(): void;
}

export function wakeablePause(stopping: () => boolean): WakeablePause {
  let wake: (() => void) | undefined;
  return {
    pause: (ms) =>
      new Promise((resolve) => {
        if (stopping()) return resolve();
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    wake: () => wake?.(),
  };
}

/** A sleep that an AbortSignal ends early (resolving, not rejecting): for loops that a stop aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
