// A private redis-server (Debian's) on a free loopback port, and redis-cli as the client, so the
// tests write stream entries exactly as an operator or a foreign writer would.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { collectLines, freePort, runCommand, spawnTracked, stopChild, waitFor } from './proc.mjs';

/**
 * Starts redis-server on 127.0.0.1 with persistence off and its data dir under `dir`. Resolves
 * once PING returns PONG. `port` picks the port (to restart a stopped server on its old port), a
 * free one by default. `name` names the data dir and the log file (dir/NAME, dir/NAME.log).
 * Returns { port, child, url, cli(args), xadd(...), timeMs(), stop() }.
 */
export async function startRedis(dir, { port: requestedPort, name = 'redis' } = {}) {
  const port = requestedPort ?? (await freePort());
  const dataDir = join(dir, name);
  await mkdir(dataDir, { recursive: true });
  const logFile = createWriteStream(join(dir, `${name}.log`), { flags: 'a' }); // kept on restart
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--dir', dataDir, '--daemonize', 'no', '--protected-mode', 'yes');
  const child = spawnTracked('redis-server', args);
  child.once('close', () => logFile.end()); // 'close' comes after the last stdio data
  const lines = [];
  collectLines(child.stdout, lines, logFile, []);
  collectLines(child.stderr, lines, logFile, []);

  const redis = {
    port,
    child,
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

/**
 * Runs `redis-cli SUBSCRIBE channel` as a child process, as any pub/sub subscriber would. Resolves
 * once Redis confirmed the subscription. Returns { messages (payloads in arrival order),
 * waitForMessages(count, opts), stop() }.
 */
export async function subscribeChannel(port, channel, { timeoutMs = 5000 } = {}) {
  const args = ['-h', '127.0.0.1', '-p', String(port), 'SUBSCRIBE', channel];
  const child = spawnTracked('redis-cli', args);
  const lines = [];
  collectLines(child.stdout, lines, null, []);
  collectLines(child.stderr, lines, null, []);
  // Without a terminal redis-cli prints each reply element on its own line: "subscribe",
  // channel, count for the confirmation, then "message", channel, payload for each message.
  const replies = () => {
    const found = [];
    for (let i = 0; i + 2 < lines.length; i += 1) {
      if ((lines[i] === 'subscribe' || lines[i] === 'message') && lines[i + 1] === channel) {
        found.push({ kind: lines[i], payload: lines[i + 2] });
        i += 2;
      }
    }
    return found;
  };
  const messages = () =>
    replies()
      .filter((reply) => reply.kind === 'message')
      .map((reply) => reply.payload);
  const stop = () => stopChild(child, { signal: 'SIGTERM', timeoutMs: 2000 });
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`redis-cli exited: ${lines.join(' | ')}`);
        return replies().some((reply) => reply.kind === 'subscribe');
      },
      { timeoutMs, intervalMs: 20, what: `redis-cli SUBSCRIBE ${channel} to be confirmed` },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const waitForMessages = async (count, { timeoutMs: waitMs = 5000 } = {}) => {
    try {
      return await waitFor(() => messages().length >= count && messages(), {
        timeoutMs: waitMs,
        intervalMs: 20,
        what: `${count} message(s) on ${channel}`,
      });
    } catch (error) {
      throw new Error(`${error.message}; redis-cli output: ${lines.join(' | ')}`);
    }
  };
  return { messages, waitForMessages, stop };
}

/**
 * Returns the connections Redis lists in CLIENT LIST, each as an object of its fields (id, addr,
 * name, flags, cmd, ...). A connection blocked in XREAD BLOCK has cmd "xread" and flag "b".
 */
export async function clientList(port) {
  const out = await redisCli(port, ['CLIENT', 'LIST']);
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = {};
      for (const pair of line.trim().split(' ')) {
        const at = pair.indexOf('=');
        if (at > 0) fields[pair.slice(0, at)] = pair.slice(at + 1);
      }
      return fields;
    });
}
