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
