// Command-line helpers that tests/bench/run.sh calls: node bench.mjs <command> [--option value].
// Each command prints its result as one JSON line on stdout, or runs until SIGTERM (issuer,
// subscribe). Errors go to stderr with a non-zero exit status.
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import {
  fillStream,
  measurePropagation,
  measureStartup,
  percentile,
  publishArgs,
} from './lib/probes.mjs';
import { connectRedis } from './lib/resp.mjs';
import { runIssuer, runSubscriber } from './lib/servers.mjs';
import { newEcJwk, publicJwkOf, signTokens } from './lib/tokens.mjs';

function freePort() {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once('error', rejectPort);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function summary(values) {
  return {
    count: values.length,
    p50_ms: percentile(values, 50),
    p99_ms: percentile(values, 99),
    max_ms: values.reduce((a, b) => Math.max(a, b), -Infinity),
  };
}

/** Joins the wrk script's send stamps (files "<prefix>.<thread>") with the subscriber's. */
function logoutLatency({ 'sent-prefix': sentPrefix, arrived }) {
  const sent = new Map();
  const name = basename(sentPrefix);
  for (const file of readdirSync(dirname(sentPrefix))) {
    if (!file.startsWith(`${name}.`)) continue;
    for (const line of readFileSync(join(dirname(sentPrefix), file), 'utf8').split('\n')) {
      const [jti, us] = line.split(' ');
      if (us !== undefined) sent.set(jti, Number(us));
    }
  }
  const latencies = [];
  let notices = 0;
  let firstSent = Infinity;
  let lastArrival = -Infinity;
  for (const line of readFileSync(arrived, 'utf8').split('\n')) {
    const [jti, us] = line.split(' ');
    if (us === undefined) continue;
    notices += 1;
    if (!sent.has(jti)) continue;
    latencies.push((Number(us) - sent.get(jti)) / 1000);
    firstSent = Math.min(firstSent, sent.get(jti));
    lastArrival = Math.max(lastArrival, Number(us));
  }
  // Throughput end to end: matched notices over the time from the first POST to the last notice.
  const seconds = (lastArrival - firstSent) / 1e6;
  return { sent: sent.size, notices, seconds, per_second: latencies.length / seconds,
    ...summary(latencies) };
}

/** Polls GET url until its body lists `count` keys; resolves with the milliseconds it took. */
async function waitForKeys({ url, count, 'timeout-ms': timeoutMs }) {
  const started = performance.now();
  const want = Number(count);
  for (;;) {
    const response = await fetch(url).catch(() => null);
    if (response !== null && response.status === 200) {
      const body = await response.json();
      if (body.keys.length === want) return { keys: want, waited_ms: performance.now() - started };
    } else if (response !== null) {
      await response.arrayBuffer();
    }
    if (performance.now() - started > Number(timeoutMs)) {
      throw new Error(`GET ${url} did not list ${want} keys within ${timeoutMs} ms`);
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 20));
  }
}

async function publishKeys({ 'redis-port': port, stream, jwks }) {
  const keys = readFileSync(jwks, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const redis = await connectRedis(Number(port));
  await redis.pipeline(keys.map((jwk, i) => publishArgs(stream, `instance-${i}`, jwk)));
  redis.close();
  return { published: keys.length };
}

const commands = {
  'free-ports': async ({ count }) => {
    const ports = new Set();
    while (ports.size < Number(count)) ports.add(await freePort());
    return [...ports];
  },
  jwk: async ({ pem, kid }) => (pem === undefined ? newEcJwk(kid) : publicJwkOf(pem, kid)),
  'publish-keys': publishKeys,
  'wait-keys': waitForKeys,
  'fill-stream': async (o) => {
    const started = performance.now();
    await fillStream({ redisPort: Number(o['redis-port']), stream: o.stream,
      keys: Number(o.keys), rounds: Number(o.rounds), prefix: o.prefix });
    return { entries: Number(o.keys) * Number(o.rounds), took_ms: performance.now() - started };
  },
  propagation: async (o) => summary(await measurePropagation({ redisPort: Number(o['redis-port']),
    url: o.url, stream: o.stream, template: readJson(o.jwk), count: Number(o.count),
    prefix: o.prefix, mode: o.mode, retire: o.retire === 'true' })),
  'sign-tokens': async (o) => ({ signed: Number(o.count), took_ms: await signTokens({
    pemPath: o.pem, kid: o.kid, issuer: o.issuer, audience: o.audience,
    count: Number(o.count), outPath: o.out }) }),
  'logout-latency': async (o) => logoutLatency(o),
  startup: async (o) => {
    const runs = [];
    for (let i = 0; i < Number(o.runs); i++) {
      runs.push(await measureStartup({ hubBinary: o.hub, args: ['--config', o.config],
        url: o.url, timeoutMs: Number(o['timeout-ms']), logPath: o.log }));
    }
    const ready = runs.map((run) => run.readyMs);
    return { runs: ready, median_ms: percentile(ready, 50), rss_kb: runs.at(-1).rssKb };
  },
  issuer: async (o) => {
    runIssuer({ port: Number(o.port), jwk: readJson(o.jwk) });
    return undefined;
  },
  subscribe: async (o) => {
    await runSubscriber({ redisPort: Number(o['redis-port']), channel: o.channel,
      outPath: o.out, readyPath: o.ready, expect: Number(o.expect),
      idleMs: Number(o['idle-ms']), timeoutMs: Number(o['timeout-ms']) });
    return undefined;
  },
};

const [name, ...rest] = process.argv.slice(2);
const command = commands[name];
if (command === undefined) {
  console.error(`bench.mjs: unknown command ${JSON.stringify(name)}; expected one of ` +
    Object.keys(commands).join(', '));
  process.exit(2);
}
const options = {};
for (const option of rest.filter((arg) => arg.startsWith('--'))) {
  options[option.slice(2)] = { type: 'string' };
}
try {
  const { values } = parseArgs({ args: rest, options, strict: true });
  const result = await command(values);
  if (result !== undefined) {
    console.log(JSON.stringify(result));
    process.exit(0);
  }
} catch (error) {
  console.error(`bench.mjs ${name}: ${error.message}`);
  process.exit(1);
}
