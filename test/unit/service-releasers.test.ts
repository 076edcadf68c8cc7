// The service's releasers list: last started, first released; one failing release does not keep the
// others from running; a failed start releases what started and rethrows its own error.
import { describe, expect, it } from 'vitest';
import { createReleasers, withReleasers } from '../../service/releasers.js';

describe('releasers', () => {
  it('release the last pushed first, each after the previous one settled, once', async () => {
    const releasers = createReleasers();
    const order: string[] = [];
    releasers.push(() => void order.push('connection'));
    releasers.push(async () => {
      await new Promise((r) => setImmediate(r));
      order.push('writers');
    });
    releasers.push(() => void order.push('listener'));
    const first = releasers.releaseAll();
    expect(releasers.releaseAll()).toBe(first);
    await first;
    expect(order).toEqual(['listener', 'writers', 'connection']);
  });

  it('run every release when one fails, then throw the first failure', async () => {
    const releasers = createReleasers();
    const order: string[] = [];
    releasers.push(() => void order.push('connection'));
    releasers.push(() => {
      throw new Error('queues would not close');
    });
    releasers.push(() => Promise.reject(new Error('writers would not stop')));
    await expect(releasers.releaseAll()).rejects.toThrow('writers would not stop');
    expect(order).toEqual(['connection']);
  });

  it('release what a failed start had started, and rethrow the start error, not a release error', async () => {
    const released: string[] = [];
    const releaseErrors: unknown[] = [];
    const start = withReleasers(
      async (releasers) => {
        releasers.push(() => void released.push('connection'));
        releasers.push(() => {
          throw new Error('watches would not stop');
        });
        await Promise.resolve();
        throw new Error('listen EADDRINUSE');
      },
      (err) => releaseErrors.push(err),
    );
    await expect(start).rejects.toThrow('listen EADDRINUSE');
    expect(released).toEqual(['connection']);
    expect(releaseErrors).toEqual([new Error('watches would not stop')]);
  });

  it('release nothing when the start succeeds', async () => {
    const released: string[] = [];
    const value = await withReleasers(
      async (releasers) => {
        releasers.push(() => void released.push('connection'));
        return 'running';
      },
      () => undefined,
    );
    expect(value).toBe('running');
    expect(released).toEqual([]);
  });
});
