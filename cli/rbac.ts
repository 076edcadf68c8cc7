// `npm run rbac -- --config <CONFIG_FILE> [--service-account name --namespace ns] [--discover]`: prints
// the least RBAC the service needs for a configuration, as multi-document YAML for `kubectl apply -f -`.
// The work is in rbac/rbac-command.ts (exit codes there); this file only binds it to the process.
import { runRbacCommand } from '../rbac/rbac-command.js';

process.exitCode = await runRbacCommand(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
});
