// `npm run faults`: the fault-injection suite of the write path at a realistic size (3 replicas, a few
// thousand events per scenario). Prints one row per scenario: events sent, acknowledged, committed, lost,
// duplicated, overlapping pushes the remote refused, takeover and drain time; then what each scenario
// observed and every problem found.
//
//   npm run faults                         all scenarios, a table
//   npm run faults -- --json               the rows as one JSON array on the last line of stdout
//   npm run faults -- --only kill-writer,poison --small
//
// Exits 1 when any row has lost, duplicated or concurrentPushes > 0, or a scenario found another problem
// (order, final tree, bounds, dead letters) or could not run.
import { REALISTIC, SCENARIO_NAMES, SMALL, runScenario, type Row, type ScenarioResult } from '../test/faults/scenarios.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const size = args.includes('--small') ? SMALL : REALISTIC;
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : args[args.indexOf(onlyArg) + 1]!).split(',') : SCENARIO_NAMES;
const unknown = only.filter((n) => !SCENARIO_NAMES.includes(n));
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIO_NAMES.join(', ')}\n`);
  process.exit(2);
}

process.on('SIGINT', () => process.exit(130)); // the harness's exit hook kills every process it started
process.on('SIGTERM', () => process.exit(143));

const err = (line: string) => process.stderr.write(`${line}\n`);
const COLUMNS: (keyof Row)[] = ['scenario', 'sent', 'acknowledged', 'committed', 'lost', 'duplicated', 'concurrentPushes', 'takeoverSeconds', 'drainSeconds'];

function table(rows: Row[]): string {
  const cells = [COLUMNS.map(String), ...rows.map((r) => COLUMNS.map((c) => (r[c] === null ? '-' : String(r[c]))))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const results: ScenarioResult[] = [];
const errors: string[] = [];
err(`fault-injection suite: ${only.length} scenarios, ${size.replicas} replicas, ${size.events} events each, lease TTL ${size.leaseTtlMs} ms`);
for (const name of only) {
  const started = Date.now();
  err(`▶ ${name}`);
  try {
    const result = await runScenario(name, size, err);
    results.push(result);
    err(`  ${JSON.stringify(result.row)} (${Math.round((Date.now() - started) / 1000)} s)`);
    for (const n of result.notes) err(`  · ${n}`);
    for (const p of result.problems) err(`  ✗ ${p}`);
  } catch (e) {
    errors.push(`${name}: ${(e as Error).stack ?? String(e)}`);
    err(`  ✗ the scenario could not run: ${(e as Error).message}`);
  }
}

const rows = results.map((r) => r.row);
const failing = results.filter((r) => r.row.lost > 0 || r.row.duplicated > 0 || r.row.concurrentPushes > 0 || r.problems.length > 0);
if (json) {
  process.stdout.write(`${JSON.stringify(rows)}\n`);
} else {
  process.stdout.write(`\n${table(rows)}\n`);
  for (const r of results) {
    if (r.problems.length === 0 && r.notes.length === 0) continue;
    process.stdout.write(`\n${r.row.scenario}${r.expectedNotCommitted ? ` (${r.expectedNotCommitted} poison event expected not committed)` : ''}:\n`);
    for (const n of r.notes) process.stdout.write(`  · ${n}\n`);
    for (const p of r.problems) process.stdout.write(`  ✗ ${p}\n`);
  }
  for (const e of errors) process.stdout.write(`\n✗ ${e}\n`);
}
if (failing.length > 0 || errors.length > 0) {
  err(`FAILED: ${[...failing.map((r) => r.row.scenario), ...errors.map((e) => e.split(':')[0])].join(', ')}`);
  process.exit(1);
}
err('all scenarios passed');
process.exit(0);
