// What the service started, and how to let go of it: every part pushes its release function as it starts,
// and they run last-started first, both at stop() and when start-up fails halfway (graphile-worker's
// "releasers"). Stop order then follows from start order instead of being written out a second time.

/** Lets go of one started part: closes, stops, clears; may be async. */
export type Release = () => unknown;

export interface Releasers {
  /** Called right after a part started, with how to release it. */
  push(release: Release): void;
  /**
   * Runs every release function, the last pushed first, each after the previous one settled. One that
   * fails does not keep the ones before it from running; the first failure is thrown once all ran.
   * Runs once: later calls get the same promise.
   */
  releaseAll(): Promise<void>;
}

export function createReleasers(): Releasers {
  const releases: Release[] = [];
  let released: Promise<void> | undefined;
  const run = async (): Promise<void> => {
    let first: { error: unknown } | undefined;
    for (const release of [...releases].reverse()) {
      try {
        await release();
      } catch (error) {
        first ??= { error };
      }
    }
    if (first) throw first.error;
  };
  return {
    push: (release) => void releases.push(release),
    releaseAll: () => (released ??= run()),
  };
}

/**
 * Runs `start` with a new releasers list. If start throws, what did start is released and the original
 * error is rethrown: a failed start leaves no listener, connection, worker or timer behind. A failure while
 * releasing is only handed to `onReleaseError`, so it never hides why the start failed.
 */
export async function withReleasers<T>(start: (releasers: Releasers) => Promise<T>, onReleaseError: (err: unknown) => void): Promise<T> {
  const releasers = createReleasers();
  try {
    return await start(releasers);
  } catch (err) {
    await releasers.releaseAll().catch(onReleaseError);
    throw err;
  }
}
