// The reconcile diff: created, updated, deleted (prune Always only), never outside the target's path.
import { describe, expect, it } from 'vitest';
import { diffTree, isUnderBase, type Finding } from '../../flows/reconcile/diff.js';
import { listedDirectories } from '../../flows/reconcile/reconcile-flow.js';

const all = () => true;

const f = (content: string, rv = '1'): Finding => ({ rv, content });

const findings = new Map<string, Finding>([
  ['clusters/prod/a/configmaps/new.yaml', f('new\n', '11')],
  ['clusters/prod/a/configmaps/same.yaml', f('same\n', '12')],
  ['clusters/prod/a/configmaps/edited.yaml', f('cluster\n', '13')],
]);
const tree = new Map<string, string>([
  ['clusters/prod/a/configmaps/same.yaml', 'same\n'],
  ['clusters/prod/a/configmaps/edited.yaml', 'by hand\n'],
  ['clusters/prod/a/configmaps/orphan.yaml', 'gone\n'],
  ['clusters/prod/README.md', 'docs\n'],
  ['clusters/prod-2/a/configmaps/other.yaml', 'not ours\n'],
  ['clusters/stage/a/configmaps/x.yaml', 'not ours\n'],
]);

describe('diffTree', () => {
  it('reports created and updated with their resourceVersion, nothing for equal content', () => {
    const d = diffTree({ findings, tree, basePath: 'clusters/prod', prune: 'OnEvent' });
    expect(d.created).toEqual([{ path: 'clusters/prod/a/configmaps/new.yaml', content: 'new\n', rv: '11' }]);
    expect(d.updated).toEqual([{ path: 'clusters/prod/a/configmaps/edited.yaml', content: 'cluster\n', rv: '13' }]);
    expect(d.deleted).toEqual([]);
  });

  it('deletes only with Always, only object files under the target path', () => {
    expect(diffTree({ findings, tree, basePath: 'clusters/prod', prune: 'Never', snapshotRv: '10', listedDirectory: all }).deleted).toEqual([]);
    expect(diffTree({ findings, tree, basePath: 'clusters/prod', prune: 'OnEvent', snapshotRv: '10', listedDirectory: all }).deleted).toEqual([]);
    expect(diffTree({ findings, tree, basePath: '/clusters/prod/', prune: 'Always', snapshotRv: '10', listedDirectory: all }).deleted).toEqual([
      { path: 'clusters/prod/a/configmaps/orphan.yaml', rv: '10' },
    ]);
  });

  it('prunes only where the run listed completely, and never without the run\'s resourceVersion', () => {
    // The ConfigMaps of namespace a were listed: the orphan there goes. A type not listed keeps its files.
    const listed = listedDirectories('clusters/prod', [
      { count: 3, pages: 1, listRv: '10', listed: { group: '', resource: 'configmaps', namespace: 'a', namespaced: true } },
    ]);
    const withSecret = new Map([...tree, ['clusters/prod/a/secrets/kept.yaml', 'x\n']]);
    const d = diffTree({ findings, tree: withSecret, basePath: 'clusters/prod', prune: 'Always', snapshotRv: '10', listedDirectory: listed });
    expect(d.deleted.map((e) => e.path)).toEqual(['clusters/prod/a/configmaps/orphan.yaml']);
    expect(diffTree({ findings, tree, basePath: 'clusters/prod', prune: 'Always', snapshotRv: '', listedDirectory: all }).deleted).toEqual([]);
    expect(diffTree({ findings, tree, basePath: 'clusters/prod', prune: 'Always', snapshotRv: '10' }).deleted).toEqual([]);
  });

  it('at the repository root, touches only the folders of listed types (not CI files or a kustomization)', () => {
    const root = new Map<string, string>([
      ['shop/apps/deployments/web.yaml', 'web\n'],
      ['_cluster/namespaces/shop.yaml', 'ns\n'],
      ['.github/workflows/ci.yaml', 'ci\n'],
      ['kustomization.yaml', 'k\n'],
      ['docs/notes.yaml', 'notes\n'],
    ]);
    const listed = listedDirectories('', [
      { count: 0, pages: 1, listRv: '7', listed: { group: 'apps', resource: 'deployments', namespace: '', namespaced: true } },
      { count: 0, pages: 1, listRv: '7', listed: { group: '', resource: 'namespaces', namespace: '', namespaced: false } },
    ]);
    const d = diffTree({ findings: new Map(), tree: root, basePath: '', prune: 'Always', snapshotRv: '7', listedDirectory: listed });
    expect(d.deleted.map((e) => e.path)).toEqual(['_cluster/namespaces/shop.yaml', 'shop/apps/deployments/web.yaml']);
  });

  it('ignores findings outside the target path, and an unchanged cluster gives nothing', () => {
    const stray = new Map([...findings, ['clusters/stage/a/configmaps/x.yaml', f('changed\n')]]);
    const d = diffTree({ findings: stray, tree, basePath: 'clusters/prod', prune: 'Always' });
    expect([...d.created, ...d.updated].map((e) => e.path)).not.toContain('clusters/stage/a/configmaps/x.yaml');
    const same = new Map([...tree].filter(([p]) => p.startsWith('clusters/prod/a/')).map(([p, c]) => [p, f(c)]));
    expect(diffTree({ findings: same, tree, basePath: 'clusters/prod', prune: 'Always' })).toEqual({ created: [], updated: [], deleted: [] });
  });

  it('isUnderBase compares whole segments', () => {
    expect(isUnderBase('clusters/prod/x.yaml', 'clusters/prod')).toBe(true);
    expect(isUnderBase('clusters/prod-2/x.yaml', 'clusters/prod')).toBe(false);
    expect(isUnderBase('x.yaml', '')).toBe(true);
  });
});
