// The direction of every import between the top-level folders (README "Layout"): a module may import its
// own folder and the folders listed for it, nothing else, and no cycle anywhere. Checked by
// test/unit/dependency-rules.test.ts (by hand: npx depcruise --config .dependency-cruiser.cjs main.ts service.ts cli).
/**
 * Each folder and what it may import besides itself. queues/names.ts is pure (it builds names and imports
 * nothing of the project but core): the configuration names each target's partition queue with it.
 */
const MAY_IMPORT = {
  core: [],
  config: ['core', 'queues/names.ts'],
  queues: ['core', 'config'],
  observability: ['core', 'config', 'queues'],
  git: ['core', 'config', 'queues', 'observability'],
  kube: ['core', 'config', 'queues', 'observability', 'git'],
  'workers/write': ['core', 'config', 'observability', 'queues', 'git', 'kube'],
  'workers/route': ['core', 'config', 'observability', 'queues', 'git', 'kube', 'workers/write'],
  'workers/ingest': ['core', 'config', 'observability', 'queues', 'git', 'kube', 'workers/route', 'workers/write'],
  flows: ['core', 'config', 'observability', 'queues', 'git', 'kube', 'workers/ingest', 'workers/route', 'workers/write'],
  rbac: ['core', 'config', 'kube'],
  dashboard: ['core', 'config', 'observability', 'queues', 'git', 'kube', 'workers/ingest', 'workers/route', 'workers/write', 'flows'],
  service: ['core', 'config', 'observability', 'queues', 'git', 'kube', 'workers/ingest', 'workers/route', 'workers/write', 'flows', 'dashboard'],
  cli: ['core', 'config', 'observability', 'queues', 'git', 'kube', 'workers/ingest', 'workers/route', 'workers/write', 'flows', 'rbac', 'dashboard'],
};
const FOLDERS = Object.keys(MAY_IMPORT);
const esc = (s) => s.replace(/[/]/g, '[/]');
const folderPattern = (f) => (f.endsWith('.ts') ? `^${esc(f)}$` : `^${esc(f)}[/]`);
/** The project's own modules (npm packages and Node's are not layered). */
const PROJECT = '^(core|config|observability|queues|git|kube|workers|flows|rbac|dashboard|service|cli)[/]|^(main|service)[.]ts$';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'a cycle makes the layers meaningless', from: {}, to: { circular: true } },
    ...FOLDERS.map((from) => ({
      name: `${from.replace('/', '-')}-imports-only-below`,
      severity: 'error',
      comment: `${from}/ may import ${MAY_IMPORT[from].join(', ') || 'nothing of the project'} besides itself`,
      from: { path: folderPattern(from) },
      to: {
        path: PROJECT,
        pathNot: [folderPattern(from), ...MAY_IMPORT[from].map(folderPattern)],
      },
    })),
    {
      name: 'names-are-pure',
      severity: 'error',
      comment: 'queues/names.ts is shared with config/: it may import core and config/defaults.ts only',
      from: { path: '^queues[/]names[.]ts$' },
      to: { path: PROJECT, pathNot: ['^core[/]', '^config[/]defaults[.]ts$'] },
    },
    {
      name: 'only-main-imports-service',
      severity: 'error',
      from: { pathNot: '^(main|service)[.]ts$|^service[/]' },
      to: { path: '^service[.]ts$|^service[/]' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(test|bench|tools|node_modules)[/]' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
