// A local bare Git remote that watches the writers: its pre-receive hook refuses OVERLAPPING pushes (an
// atomic `mkdir` of a lock dir is the test-and-set; the lock is held ~150 ms to widen the window) and logs
// each refusal, refuses non-fast-forward updates (a force-push), and can be told through a control file to
// refuse everything (remote down) or every push whose new commits touch one path (poison). Its
// post-receive hook logs every push that landed, with the pids of the pushing process chain, so a push can
// be traced to the replica that made it.
//
// Aimed faults, each armed for the NEXT writer push only (an atomic `mv` of the arming file claims it):
// - holdNextPush: pre-receive, before it takes the lock, records the push (its pushers, old and new sha,
//   the Audit-IDs it carries) and waits until the test releases it (accept or refuse). The writer's commits
//   are made and its push is on the wire, for certain, while the test stops or kills it.
// - outsideCommitOnNextPush('after'): post-receive puts someone else's commit on top of the push that just
//   landed, before the pusher hears back; its next push, built on its own last one, is refused by git as
//   stale (a non-fast-forward race lost between "fetch" and push).
// - outsideCommitOnNextPush('during'): pre-receive puts someone else's commit on the branch while the push
//   is inside the remote; the remote's ref update (a compare-and-swap on the old value the pusher sent) then
//   fails and the push comes back as "[remote rejected] (failed to update ref)".
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LandedPush {
  /** Epoch ms when post-receive ran (the ref was updated). */
  at: number;
  /** Pids of the hook's ancestors: receive-pack, git push, …, the process that pushed. */
  pushers: number[];
  oldSha: string;
  newSha: string;
  ref: string;
  outside: boolean;
}

/** A writer push that the pre-receive hook holds (holdNextPush). */
export interface HeldPush {
  /** Epoch ms when the hook began to hold it. */
  at: number;
  hookPid: number;
  /** Pids of the hook's ancestors, as in LandedPush. */
  pushers: number[];
  oldSha: string;
  newSha: string;
  ref: string;
  /** The Audit-ID trailers of the commits it carries (old..new). */
  auditIDs: string[];
}

/** When the outside commit of outsideCommitOnNextPush lands relative to the writer push it is aimed at. */
export type OutsideTiming = 'after' | 'during';

/** An outside commit the hooks made (outsideCommitOnNextPush). */
export interface ForcedOutside {
  at: number;
  timing: OutsideTiming;
  /** The writer push it was aimed at: old and new sha as that push sent them. */
  writerOld: string;
  writerNew: string;
  /** The outside commit; null when the hook could not make it. */
  sha: string | null;
  path: string;
}

export interface GuardedRemote {
  gitDir: string;
  branch: string;
  /** Refuse every push until `accept()`. */
  refuseAll(): Promise<void>;
  /** Refuse every push whose new commits add, change or delete `path`. */
  refusePath(path: string): Promise<void>;
  accept(): Promise<void>;
  /** Lines of the overlap log: each one a push refused because another push was in progress. */
  concurrentRefusals(): Promise<string[]>;
  /** Lines of the refusal log (remote down, poison path, non-fast-forward, a held push refused). */
  refusals(): Promise<string[]>;
  /** Non-fast-forward updates that were attempted (each also refused). */
  forcePushes(): Promise<string[]>;
  landed(): Promise<LandedPush[]>;
  git(...args: string[]): Promise<string>;
  /** Commits someone else makes: clones, commits `path`, pushes (rebasing and retrying when refused). Returns its sha on the branch. */
  pushOutsideCommit(workDir: string, path: string, content: string): Promise<string>;
  /** The next writer push waits in pre-receive (before the lock) until releaseHeldPush; forgets an earlier hold. */
  holdNextPush(): Promise<void>;
  /** The push being (or last) held, once the hook holds it. */
  heldPush(): Promise<HeldPush | undefined>;
  /** Lets the held push go on (accept: the usual checks, then it lands) or refuses it. */
  releaseHeldPush(verdict: 'accept' | 'refuse'): Promise<void>;
  /** Someone else's commit adding `path` lands right after ('after') or during ('during') the next writer push. */
  outsideCommitOnNextPush(timing: OutsideTiming, path: string): Promise<void>;
  /** The outside commits the hooks made, oldest first. */
  forcedOutside(): Promise<ForcedOutside[]>;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface HookFiles {
  lock: string;
  control: string;
  concurrent: string;
  refusals: string;
  force: string;
  landed: string;
  hold: string;
  held: string;
  release: string;
  outsideAfter: string;
  outsideDuring: string;
  forced: string;
}

/** Shell functions both hooks use. */
function common(d: HookFiles, branch: string): string {
  return `BRANCH=${q(branch)}; LANDED=${q(d.landed)}; FORCED=${q(d.forced)}
ZERO=0000000000000000000000000000000000000000
now() { date +%s%3N; }
# PPid from /proc/<pid>/status: /proc/<pid>/stat's fields shift when a process name holds a space.
pushers() { local p=$$ chain=""; for _ in 1 2 3 4 5 6 7 8; do p=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null); [ -z "$p" ] || [ "$p" -le 1 ] && break; chain="$chain,$p"; done; echo "\${chain#,}"; }
# Someone else's commit adding $4 on top of the branch tip, set by a compare-and-swap on that tip; logged
# as a landed outside push and in the forced log: <at> <timing> <writer old> <writer new> <sha|-> <path>.
land_outside() {
  local timing=$1 wold=$2 wnew=$3 path=$4 tip blob tree commit t idx="$FORCED.$$.index"
  if tip=$(git rev-parse --verify -q "refs/heads/$BRANCH") &&
    blob=$(printf 'an outside change (%s a writer push)\\n' "$timing" | git hash-object -w --stdin) &&
    GIT_INDEX_FILE="$idx" git read-tree "$tip" &&
    GIT_INDEX_FILE="$idx" git update-index --add --cacheinfo "100644,$blob,$path" &&
    tree=$(GIT_INDEX_FILE="$idx" git write-tree) &&
    commit=$(GIT_AUTHOR_NAME='Outside Person' GIT_AUTHOR_EMAIL=outside@example.com GIT_COMMITTER_NAME='Outside Person' GIT_COMMITTER_EMAIL=outside@example.com git commit-tree "$tree" -p "$tip" -m "outside change to $path") &&
    git update-ref -m "outside change to $path" "refs/heads/$BRANCH" "$commit" "$tip"; then
    t=$(now)
    echo "$t $$ $tip $commit refs/heads/$BRANCH outside" >> "$LANDED"
    echo "$t $timing $wold $wnew $commit $path" >> "$FORCED"
  else
    echo "$(now) $timing $wold $wnew - $path" >> "$FORCED"
  fi
  rm -f "$idx"
}
`;
}

function preReceive(d: HookFiles, branch: string): string {
  return `#!/usr/bin/env bash
# Generated by test/faults/harness/guarded-remote.ts
LOCK=${q(d.lock)}; CONTROL=${q(d.control)}; CONCURRENT=${q(d.concurrent)}; REFUSALS=${q(d.refusals)}; FORCE=${q(d.force)}
HOLD=${q(d.hold)}; HELD=${q(d.held)}; RELEASE=${q(d.release)}; OUTSIDE_DURING=${q(d.outsideDuring)}
${common(d, branch)}
input=$(cat)
oneline=$(echo "$input" | tr '\\n' ' ')
read -r first_old first_new first_ref <<< "$input"
refuse() { echo "$(now) $1 pushers=$(pushers) $oneline" >> "$REFUSALS"; echo "refused: $1" >&2; exit 1; }
if [ -z "$FAULTS_OUTSIDE_PUSH" ] && mv "$HOLD" "$HOLD.$$" 2>/dev/null; then
  # holdNextPush: wait (before the lock, so other pushes are not held up) until the test says what to do.
  rm -f "$HOLD.$$"
  if [ "$first_old" = "$ZERO" ]; then range="$first_new"; else range="$first_old..$first_new"; fi
  ids=$(git log --format='%(trailers:key=Audit-ID,valueonly,separator=%x2C)' "$range" | grep -v '^$' | paste -sd, -)
  chain=$(pushers)
  echo "$(now) $$ \${chain:-0} $first_old $first_new $first_ref \${ids:--}" > "$HELD.tmp" && mv "$HELD.tmp" "$HELD"
  for _ in $(seq 6000); do [ -f "$RELEASE" ] && break; sleep 0.02; done
  case "$(cat "$RELEASE" 2>/dev/null)" in
    accept) ;;
    refuse) refuse "held push refused by the test" ;;
    *) refuse "held push not released within 120 s" ;;
  esac
fi
if [ -z "$FAULTS_OUTSIDE_PUSH" ]; then
  if ! mkdir "$LOCK" 2>/dev/null; then
    holder=$(cat "$LOCK/pid" 2>/dev/null)
    # A hook killed with its pusher leaves the lock behind: a dead holder's lock is stale, not an overlap.
    if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then rm -rf "$LOCK"; fi
    if ! mkdir "$LOCK" 2>/dev/null; then
      echo "$(now) overlapping push refused (push in progress: hook pid \${holder:-unknown}) pushers=$(pushers) $oneline" >> "$CONCURRENT"
      echo "refused: another push to this repository is in progress" >&2
      exit 1
    fi
  fi
  echo $$ > "$LOCK/pid"
  trap 'rm -rf "$LOCK"' EXIT
fi
mode=$(cat "$CONTROL" 2>/dev/null)
[ "$mode" = "down" ] && refuse "remote down"
while read -r old new ref; do
  [ -z "$ref" ] && continue
  if [ "$old" != "$ZERO" ] && [ "$new" != "$ZERO" ] && ! git merge-base --is-ancestor "$old" "$new"; then
    echo "$(now) $ref $old -> $new pushers=$(pushers)" >> "$FORCE"
    refuse "non-fast-forward update of $ref"
  fi
  case "$mode" in
    poison:*)
      path="\${mode#poison:}"
      if [ "$old" = "$ZERO" ]; then range="$new"; else range="$old..$new"; fi
      if git log --format= --name-only "$range" -- | grep -qxF "$path"; then refuse "poison path $path"; fi
      ;;
  esac
done <<< "$input"
if [ -z "$FAULTS_OUTSIDE_PUSH" ] && mv "$OUTSIDE_DURING" "$OUTSIDE_DURING.$$" 2>/dev/null; then
  # outsideCommitOnNextPush('during'): the branch moves now, outside the quarantine of this push's objects.
  path=$(cat "$OUTSIDE_DURING.$$"); rm -f "$OUTSIDE_DURING.$$"
  ( unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES; land_outside during "$first_old" "$first_new" "$path" )
fi
[ -z "$FAULTS_OUTSIDE_PUSH" ] && sleep 0.15
exit 0
`;
}

function postReceive(d: HookFiles, branch: string): string {
  return `#!/usr/bin/env bash
# Generated by test/faults/harness/guarded-remote.ts
OUTSIDE_AFTER=${q(d.outsideAfter)}
${common(d, branch)}
t=$(now); chain=$(pushers)
input=$(cat)
while read -r old new ref; do [ -z "$ref" ] && continue; echo "$t $chain $old $new $ref \${FAULTS_OUTSIDE_PUSH:+outside}" >> "$LANDED"; done <<< "$input"
if [ -z "$FAULTS_OUTSIDE_PUSH" ] && mv "$OUTSIDE_AFTER" "$OUTSIDE_AFTER.$$" 2>/dev/null; then
  # outsideCommitOnNextPush('after'): on top of this push, before its pusher hears that it landed.
  path=$(cat "$OUTSIDE_AFTER.$$"); rm -f "$OUTSIDE_AFTER.$$"
  read -r old new ref <<< "$input"
  land_outside after "$old" "$new" "$path"
fi
exit 0
`;
}

async function readLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Written whole or not at all: a hook polling for the file never reads half of it. */
async function writeAtomic(file: string, content: string): Promise<void> {
  await writeFile(`${file}.tmp`, content);
  await rename(`${file}.tmp`, file);
}

export async function createGuardedRemote(dir: string, branch = 'main'): Promise<GuardedRemote> {
  await mkdir(dir, { recursive: true });
  const gitDir = join(dir, 'remote.git');
  const files: HookFiles = {
    lock: join(dir, 'push.lock'),
    control: join(dir, 'control'),
    concurrent: join(dir, 'concurrent-pushes.log'),
    refusals: join(dir, 'refusals.log'),
    force: join(dir, 'force-pushes.log'),
    landed: join(dir, 'landed.log'),
    hold: join(dir, 'hold-next-push'),
    held: join(dir, 'held-push'),
    release: join(dir, 'release-held-push'),
    outsideAfter: join(dir, 'outside-after-next-push'),
    outsideDuring: join(dir, 'outside-during-next-push'),
    forced: join(dir, 'forced-outside.log'),
  };
  await run('git', ['init', '--bare', '--quiet', `--initial-branch=${branch}`, gitDir]);
  await run('git', ['--git-dir', gitDir, 'config', 'core.logAllRefUpdates', 'always']);
  await writeFile(files.control, 'accept\n');
  await writeFile(join(gitDir, 'hooks', 'pre-receive'), preReceive(files, branch));
  await writeFile(join(gitDir, 'hooks', 'post-receive'), postReceive(files, branch));
  await chmod(join(gitDir, 'hooks', 'pre-receive'), 0o755);
  await chmod(join(gitDir, 'hooks', 'post-receive'), 0o755);

  const git = async (...args: string[]) => (await run('git', ['--git-dir', gitDir, ...args], { maxBuffer: 256 * 1024 * 1024 })).stdout;

  return {
    gitDir,
    branch,
    refuseAll: () => writeFile(files.control, 'down\n'),
    refusePath: (path) => writeFile(files.control, `poison:${path}\n`),
    accept: () => writeFile(files.control, 'accept\n'),
    concurrentRefusals: () => readLines(files.concurrent),
    refusals: () => readLines(files.refusals),
    forcePushes: () => readLines(files.force),
    async landed() {
      return (await readLines(files.landed)).map((line) => {
        const [at, chain, oldSha, newSha, ref, outside] = line.split(' ');
        return {
          at: Number(at),
          pushers: (chain ?? '').split(',').filter(Boolean).map(Number),
          oldSha: oldSha ?? '',
          newSha: newSha ?? '',
          ref: ref ?? '',
          outside: outside === 'outside',
        };
      });
    },
    git,
    async pushOutsideCommit(workDir, path, content) {
      const env = { ...process.env, FAULTS_OUTSIDE_PUSH: '1', GIT_AUTHOR_NAME: 'Outside Person', GIT_AUTHOR_EMAIL: 'outside@example.com', GIT_COMMITTER_NAME: 'Outside Person', GIT_COMMITTER_EMAIL: 'outside@example.com' };
      const w = (...args: string[]) => run('git', ['-C', workDir, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
      await run('git', ['clone', '--quiet', '--branch', branch, gitDir, workDir], { env });
      await mkdir(join(workDir, path, '..'), { recursive: true });
      await writeFile(join(workDir, path), content);
      await w('add', path);
      await w('commit', '--quiet', '-m', `outside change to ${path}`);
      let lastError = '';
      for (let attempt = 1; attempt <= 20; attempt++) {
        try {
          await w('push', '--quiet', 'origin', `HEAD:${branch}`);
          return (await w('rev-parse', 'HEAD')).stdout.trim();
        } catch (err) {
          lastError = (err as Error).message;
          // Someone pushed first: rebase on the new tip and try again, as a person would.
          await w('pull', '--quiet', '--rebase', 'origin', branch);
        }
      }
      throw new Error(`the outside commit could not be pushed after 20 attempts: ${lastError}`);
    },
    async holdNextPush() {
      await rm(files.held, { force: true });
      await rm(files.release, { force: true });
      await writeAtomic(files.hold, 'hold\n');
    },
    async heldPush() {
      const [line] = await readLines(files.held);
      if (!line) return undefined;
      const [at, hookPid, chain, oldSha, newSha, ref, ids] = line.split(' ');
      return {
        at: Number(at),
        hookPid: Number(hookPid),
        pushers: (chain ?? '').split(',').filter(Boolean).map(Number),
        oldSha: oldSha ?? '',
        newSha: newSha ?? '',
        ref: ref ?? '',
        auditIDs: !ids || ids === '-' ? [] : ids.split(',').filter(Boolean),
      };
    },
    releaseHeldPush: (verdict) => writeAtomic(files.release, `${verdict}\n`),
    outsideCommitOnNextPush: (timing, path) => writeAtomic(timing === 'after' ? files.outsideAfter : files.outsideDuring, `${path}\n`),
    async forcedOutside() {
      return (await readLines(files.forced)).map((line) => {
        const [at, timing, writerOld, writerNew, sha, path] = line.split(' ');
        return { at: Number(at), timing: timing as OutsideTiming, writerOld: writerOld ?? '', writerNew: writerNew ?? '', sha: !sha || sha === '-' ? null : sha, path: path ?? '' };
      });
    },
  };
}
