// Runs the real kc-cluster-ctl binary: a long-running `publish` process, or a one-shot command.
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  buildDir,
  cleanEnv,
  collectLines,
  runCommand,
  spawnTracked,
  stopChild,
  waitFor,
} from './proc.mjs';

export const ctlBinary = join(buildDir, 'kc-cluster-ctl');

/**
 * Starts `kc-cluster-ctl publish` with the given options (an object of flag name to value; an
 * array value repeats the flag, `true` passes it bare). Its stderr goes to `logPath` and to
 * `lines`. Returns { child, lines, logPath, stop(signal) }.
 */
export function startPublish({ dir, name, flags }) {
  const args = ['publish', ...flagsToArgs(flags)];
  const logPath = join(dir, `ctl-${name}.log`);
  const logFile = createWriteStream(logPath);
  const child = spawnTracked(ctlBinary, args, { env: cleanEnv() });
  const lines = [];
  collectLines(child.stdout, lines, logFile, []);
  collectLines(child.stderr, lines, logFile, []);
  child.once('close', () => logFile.end()); // 'close' comes after the last stdio data
  return {
    child,
    lines,
    logPath,
    args,
    stop: (signal = 'SIGTERM', timeoutMs = 10000) => stopChild(child, { signal, timeoutMs }),
  };
}

/** Runs kc-cluster-ctl to completion; returns { code, stdout, stderr }. */
export function runCtl(args, { timeoutMs = 30000 } = {}) {
  return runCommand(ctlBinary, args, { timeoutMs, env: cleanEnv() });
}

/**
 * Waits until the ctl has written its ready file and returns the parsed { kids, safe_at_ms }.
 * Fails early when the ctl process exits first.
 */
export async function waitForReadyFile(path, publisher, { timeoutMs = 30000 } = {}) {
  return waitFor(
    async () => {
      try {
        return JSON.parse(await readFile(path, 'utf8'));
      } catch (error) {
        if (publisher && publisher.child.exitCode !== null) {
          throw new Error(
            `kc-cluster-ctl exited with ${publisher.child.exitCode} before writing ${path}: ` +
              publisher.lines.slice(-5).join(' | '),
          );
        }
        if (error.code === 'ENOENT') return false;
        throw error;
      }
    },
    { timeoutMs, intervalMs: 100, what: `ready file ${path}` },
  );
}

function flagsToArgs(flags) {
  const args = [];
  for (const [name, value] of Object.entries(flags)) {
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (item === true) args.push(`--${name}`);
      else if (item !== undefined && item !== false) args.push(`--${name}`, String(item));
    }
  }
  return args;
}

/**
 * Starts `kc-cluster-ctl listen` with the given flags (as for startPublish). Its stdout lines, one
 * JSON notice each, go to `stdout` as text; its stderr goes to `logLines`; both go to dir/NAME.log.
 * Returns { child, stdout, logLines, logPath, notices() (stdout parsed), waitForNotices(count,
 * opts), stop(signal) }.
 */
export function startListen({ dir, name, flags }) {
  const args = ['listen', ...flagsToArgs(flags)];
  const logPath = join(dir, `ctl-${name}.log`);
  const logFile = createWriteStream(logPath);
  const child = spawnTracked(ctlBinary, args, { env: cleanEnv() });
  const stdout = [];
  const logLines = [];
  collectLines(child.stdout, stdout, logFile, []);
  collectLines(child.stderr, logLines, logFile, []);
  child.once('close', () => logFile.end()); // 'close' comes after the last stdio data
  const notices = () => stdout.filter((line) => line.trim() !== '').map((line) => JSON.parse(line));
  const describe = () =>
    `stdout: ${stdout.join(' | ') || '(none)'}; stderr tail: ${logLines.slice(-5).join(' | ')}`;
  const waitForNotices = async (count, { timeoutMs = 10000 } = {}) => {
    try {
      return await waitFor(
        () => {
          const printed = notices();
          if (printed.length >= count) return printed;
          if (child.exitCode !== null) throw new Error(`it exited with ${child.exitCode}`);
          return false;
        },
        { timeoutMs, intervalMs: 20, what: `${count} notice(s) from kc-cluster-ctl ${name}` },
      );
    } catch (error) {
      throw new Error(`${error.message}; ${describe()}`);
    }
  };
  return {
    child,
    args,
    stdout,
    logLines,
    logPath,
    notices,
    describe,
    waitForNotices,
    stop: (signal = 'SIGTERM', timeoutMs = 5000) => stopChild(child, { signal, timeoutMs }),
  };
}
