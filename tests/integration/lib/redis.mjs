// A private redis-server (Debian's) on a free loopback port, and redis-cli as the client, so the
// tests write stream entries exactly as an operator or a foreign writer would.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { collectLines, freePort, runCommand, spawnTracked, stopChild, waitFor } from './proc.mjs';

/**
 * Starts redis-server on 127.0.0.1 with persistence off and its data dir under `dir`. Resolves
 * once PING returns PONG. Returns { port, url, cli(args), xadd(...), timeMs(), stop() }.
 */
export async function startRedis(dir) {
  const port = await freePort();
  const dataDir = join(dir, 'redis');
  await mkdir(dataDir, { recursive: true });
  const logFile = createWriteStream(join(dir, 'redis.log'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--dir', dataDir, '--daemonize', 'no', '--protected-mode', 'yes');
  const child = spawnTracked('redis-server', args);
  child.once('close', () => logFile.end()); // 'close' comes after the last stdio data
  const lines = [];
  collectLines(child.stdout, lines, logFile, []);
  collectLines(child.stderr, lines, logFile, []);

  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    lines,
    cli: (args, options) => redisCli(port, args, options),
    xadd: (stream, fields, id = '*') => xadd(port, stream, fields, id),
    timeMs: () => redisTimeMs(port),
    stop: () => stopChild(child, { signal: 'SIGTERM', timeoutMs: 5000 }),
  };

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${lines.join(' | ')}`);
        const reply = await redisCli(port, ['PING'], { allowError: true });
        return reply.trim() === 'PONG';
      },
      { timeoutMs: 10000, intervalMs: 50, what: `redis-server PING on port ${port}` },
    );
  } catch (error) {
    await redis.stop();
    throw error;
  }
  return redis;
}

/** Runs redis-cli against the port and returns its stdout; throws on a failed command. */
export async function redisCli(port, args, { allowError = false, json = false } = {}) {
  const base = ['-h', '127.0.0.1', '-p', String(port), '-e'];
  if (json) base.push('--json');
  const result = await runCommand('redis-cli', [...base, ...args], { timeoutMs: 5000 });
  if (result.code !== 0 && !allowError) {
    throw new Error(
      `redis-cli ${args.slice(0, 3).join(' ')} failed with status ${result.code}: ` +
        `${result.stdout.trim()} ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/**
 * Appends an entry to `stream` with the given fields ([name, value] pairs or an object, in
 * order) and returns the entry ID Redis assigned.
 */
export async function xadd(port, stream, fields, id = '*') {
  const pairs = Array.isArray(fields) ? fields : Object.entries(fields);
  const args = ['XADD', stream, id];
  for (const [name, value] of pairs) args.push(name, String(value));
  const entryId = (await redisCli(port, args)).trim();
  if (!/^\d+-\d+$/.test(entryId)) {
    throw new Error(`XADD ${stream} returned ${JSON.stringify(entryId)}, not an entry ID`);
  }
  return entryId;
}

/** Returns the Redis server clock (TIME) in epoch milliseconds. */
export async function redisTimeMs(port) {
  const [seconds, micros] = (await redisCli(port, ['TIME'])).trim().split('\n');
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * Returns the newest entries of `stream` (up to `count`) as [{ id, fields: {name: value} }],
 * newest first.
 */
export async function xrevrange(port, stream, count = 100) {
  const out = await redisCli(port, ['XREVRANGE', stream, '+', '-', 'COUNT', String(count)], {
    json: true,
  });
  const entries = JSON.parse(out.trim() || '[]');
  return entries.map(([id, flat]) => {
    const fields = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
    return { id, fields };
  });
}

/** Returns the millisecond part of a stream entry ID "ms-seq". */
export function entryIdMs(id) {
  return Number(id.split('-')[0]);
}
