// `npm start` as a child process for end-to-end tests: `node --import tsx main.ts` (the image's command)
// in a process group of its own, so the service and anything it started (an embedded Valkey) can be
// killed together when a test fails or times out, and never outlive the test run.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Its exit code, when it exits. */
  exited: Promise<number | null>;
  /** Rejects as soon as the process exits: race a wait against it to fail at once on a crash. */
  alive<T>(wait: Promise<T>): Promise<T>;
  /** SIGKILL to the whole group, if it still runs. */
  kill(): void;
}

export function startServiceProcess(env: NodeJS.ProcessEnv): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const died = exited.then((code) => Promise.reject(new Error(`the service exited with ${code}:\n${output.slice(-4000)}`)));
  died.catch(() => undefined);
  return {
    child,
    output: () => output,
    exited,
    alive: (wait) => Promise.race([wait, died]),
    kill() {
      if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, 'SIGKILL');
    },
  };
}
