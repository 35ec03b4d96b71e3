// Timed probes against a running hub: key propagation (XADD to the first response that shows the
// key), the time from starting a hub to its first 200, and Redis stream filling.
import { spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

import { connectRedis } from './resp.mjs';
import { newEcJwk } from './tokens.mjs';

const POLL_TIMEOUT_MS = 10000;
const LEASE_MS = 3600000;

/** Returns the p-th percentile (0-100, nearest rank) of an array of numbers. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** Sends one request over agent and resolves with { status, etag, body }. */
function fetchOnce(agent, url, method, etag) {
  return new Promise((resolveFetch, rejectFetch) => {
    const headers = etag ? { 'if-none-match': etag } : {};
    const req = request(url, { agent, method, headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () =>
        resolveFetch({
          status: response.statusCode,
          etag: response.headers.etag,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.setTimeout(POLL_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', rejectFetch);
    req.end();
  });
}

export function publishArgs(stream, instance, jwk) {
  const json = JSON.stringify(jwk);
  return ['XADD', stream, '*', 'v', '1', 'type', 'publish', 'instance', instance, 'kid', jwk.kid,
    'lease_ms', String(LEASE_MS), 'jwk', json];
}

/**
 * Publishes `count` keys one after the other (template's material, kids "<prefix>-<i>"), and
 * for each measures the milliseconds from sending XADD to the first response that proves the hub
 * applied it. mode "get" polls GET with If-None-Match until a 200 body contains the kid; mode
 * "head" polls HEAD until the ETag changes, which happens only once the rebuilt body is
 * published. With retire true each key is retired right after it was seen (run the hub with
 * retire_grace_ms 0 so the key set keeps its size). Resolves with the latencies.
 */
export async function measurePropagation({ redisPort, url, stream, template, count, prefix,
  mode = 'get', retire = false }) {
  const redis = await connectRedis(redisPort);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const method = mode === 'head' ? 'HEAD' : 'GET';
  let { etag } = await fetchOnce(agent, url, method);
  const latencies = [];
  try {
    for (let i = 0; i < count; i++) {
      const kid = `${prefix}-${i}`;
      const needle = `"kid":"${kid}"`;
      const started = performance.now();
      await redis.command(publishArgs(stream, 'propagation-probe', { ...template, kid }));
      for (;;) {
        if (performance.now() - started > POLL_TIMEOUT_MS) {
          throw new Error(`the hub did not serve kid ${kid} within ${POLL_TIMEOUT_MS} ms`);
        }
        const seen = await fetchOnce(agent, url, method, etag);
        if (seen.status !== 200 && seen.status !== 304) {
          throw new Error(`${method} ${url} returned ${seen.status} while waiting for ${kid}`);
        }
        if (seen.status === 304) continue;
        const applied = mode === 'head' ? seen.etag !== etag : seen.body.includes(needle);
        etag = seen.etag;
        if (applied) break;
      }
      latencies.push(performance.now() - started);
      if (retire) {
        await redis.command(['XADD', stream, '*', 'v', '1', 'type', 'retire', 'instance',
          'propagation-probe', 'kid', kid]);
      }
    }
  } finally {
    agent.destroy();
    redis.close();
  }
  return latencies;
}

/**
 * Appends publish entries to stream: `keys` distinct EC P-256 keys (kids "<prefix>-<i>"), each
 * published `rounds` times, as renewals from a fleet look. Pipelines 1000 entries per round trip.
 */
export async function fillStream({ redisPort, stream, keys, rounds, prefix }) {
  const redis = await connectRedis(redisPort);
  const jwks = Array.from({ length: keys }, (_, i) => newEcJwk(`${prefix}-${i}`));
  const batch = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < keys; i++) {
        batch.push(publishArgs(stream, `instance-${i}`, jwks[i]));
        if (batch.length === 1000) await redis.pipeline(batch.splice(0));
      }
    }
    if (batch.length > 0) await redis.pipeline(batch.splice(0));
  } finally {
    redis.close();
  }
}

/**
 * Starts the hub binary with args, polls GET url every millisecond until it returns 200, and
 * resolves with { readyMs (from spawn), rssKb (VmRSS once ready) }. Stops the hub with SIGTERM
 * before resolving, and kills it if it outlives this process.
 */
export async function measureStartup({ hubBinary, args, url, timeoutMs, logPath }) {
  const log = openSync(logPath, 'a');
  const started = performance.now();
  const child = spawn(hubBinary, args, { stdio: ['ignore', log, log] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the hub exited with ${child.exitCode}`);
      if (performance.now() - started > timeoutMs) {
        throw new Error(`the hub did not return 200 on ${url} within ${timeoutMs} ms`);
      }
      const seen = await fetchOnce(agent, url, 'HEAD').catch(() => ({ status: 0 }));
      if (seen.status === 200) break;
      await new Promise((resolveWait) => setTimeout(resolveWait, 1));
    }
    const readyMs = performance.now() - started;
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return { readyMs, rssKb };
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await exited;
    process.removeListener('exit', killOnExit);
  }
}
