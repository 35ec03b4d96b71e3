// Process, port, temp-dir and waiting helpers shared by the integration tests. Every child
// process started through spawnTracked() is killed when the test process exits, and every wait
// takes a deadline.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Repository root, two levels above tests/integration/lib. */
export const repoRoot = resolve(here, '..', '..', '..');

/** Directory holding kc-cluster-hub and kc-cluster-ctl; KCHUB_TEST_BUILD_DIR overrides build/. */
export const buildDir = process.env.KCHUB_TEST_BUILD_DIR
  ? resolve(process.env.KCHUB_TEST_BUILD_DIR)
  : join(repoRoot, 'build');

const tracked = new Set();

process.on('exit', () => {
  for (const child of tracked) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

/**
 * Spawns a child process and records it so that killAllTracked() and process exit kill it.
 * The returned child has an `exited` promise resolving to { code, signal }.
 */
export function spawnTracked(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  tracked.add(child);
  child.exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => {
      tracked.delete(child);
      resolveExit({ code, signal });
    });
    child.once('error', (error) => {
      tracked.delete(child);
      resolveExit({ code: null, signal: null, error });
    });
  });
  return child;
}

/** Sends SIGKILL to every tracked child that still runs. */
export function killAllTracked() {
  for (const child of tracked) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/**
 * Stops a child: sends `signal`, waits up to timeoutMs, then SIGKILL. Returns { code, signal }
 * of the exit.
 */
export async function stopChild(child, { signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends the whole test process with status 1 after `ms`, killing every tracked child first, so a
 * hung test file (for example a deadlocked crypto call) cannot block the run. The timer does not
 * keep the process alive. Returns a function that cancels it.
 */
export function installHardTimeout(ms, label) {
  const timer = setTimeout(() => {
    console.error(`${label}: hard timeout of ${ms} ms reached, killing children and exiting`);
    killAllTracked();
    process.exit(1);
  }, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Creates a temp directory; remove it with removeTempDir(). */
export function makeTempDir(prefix) {
  return mkdtemp(join(tmpdir(), `kchub-${prefix}-`));
}

export function removeTempDir(dir) {
  return rm(dir, { recursive: true, force: true });
}

export function delay(ms) {
  return new Promise((resolveDelay) => setTimeout(resolveDelay, ms));
}

/**
 * Calls check() every intervalMs until it returns a truthy value, and returns that value.
 * Throws an Error naming `what` with the last value or error seen when timeoutMs passes.
 */
export async function waitFor(check, { timeoutMs, intervalMs = 100, what }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await delay(intervalMs);
  }
}

/**
 * Runs a command to completion with a timeout and returns { code, stdout, stderr }. Never
 * rejects on a non-zero exit; the caller checks `code`.
 */
export function runCommand(command, args, { timeoutMs = 10000, env, input } = {}) {
  return new Promise((resolveRun) => {
    const child = execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', env, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        let code = 0;
        if (error) code = typeof error.code === 'number' ? error.code : -1;
        resolveRun({ code, stdout, stderr, error });
      },
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

/**
 * Collects a stream's text as lines into `lines` and appends the raw text to `file` (an open
 * fs.WriteStream), calling every listener in `listeners` with each new line.
 */
export function collectLines(stream, lines, file, listeners) {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    file?.write(chunk);
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop();
    for (const line of parts) {
      lines.push(line);
      for (const listener of listeners) listener(line);
    }
  });
  stream.on('end', () => {
    if (pending) {
      lines.push(pending);
      for (const listener of listeners) listener(pending);
    }
  });
}

/** Returns an environment without KCHUB_* variables, because they override config files. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('KCHUB_')) env[name] = value;
  }
  return { ...env, ...extra };
}
