// Long-running helpers of the logout benchmark: the issuer whose keys the hub fetches, and a
// pub/sub subscriber that stamps each notice's arrival.
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import { connectRedis } from './resp.mjs';

/**
 * Serves an OpenID discovery document (issuer, jwks_uri) and the JWKS { keys: [jwk] } on
 * 127.0.0.1:port until SIGTERM. The issuer is "http://127.0.0.1:<port>".
 */
export function runIssuer({ port, jwk }) {
  const issuer = `http://127.0.0.1:${port}`;
  const discovery = JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` });
  const jwks = JSON.stringify({ keys: [jwk] });
  const server = createServer((req, res) => {
    const body = req.url === '/.well-known/openid-configuration' ? discovery
      : req.url === '/jwks' ? jwks : null;
    res.writeHead(body === null ? 404 : 200, { 'content-type': 'application/json' });
    res.end(body ?? '{"error":"not_found"}');
  });
  server.listen(port, '127.0.0.1');
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

const SUBSCRIBER_CHECK_MS = 50;

/**
 * Subscribes to channel and records, for every notice, its jti and the arrival time in
 * microseconds of the monotonic clock (CLOCK_MONOTONIC, the clock the wrk script stamps sends
 * with). Writes readyPath once subscribed. Writes "<jti> <us>" lines to outPath and exits once
 * `expect` notices arrived, once none arrived for idleMs after the first, after timeoutMs, or on
 * SIGTERM.
 */
export async function runSubscriber({ redisPort, channel, outPath, readyPath, expect, idleMs,
  timeoutMs }) {
  const arrivals = [];
  let lastArrival = 0;
  const redis = await connectRedis(redisPort);
  await redis.subscribe(channel, (payload) => {
    const at = process.hrtime.bigint() / 1000n;
    const match = /"jti":"([^"]*)"/.exec(payload);
    if (match) arrivals.push(`${match[1]} ${at}`);
    lastArrival = performance.now();
  });
  writeFileSync(readyPath, 'subscribed\n');
  const started = performance.now();
  const finish = () => {
    writeFileSync(outPath, arrivals.join('\n') + (arrivals.length > 0 ? '\n' : ''));
    redis.close();
    process.exit(0);
  };
  process.once('SIGTERM', finish);
  setInterval(() => {
    const now = performance.now();
    const idle = arrivals.length > 0 && now - lastArrival > idleMs;
    if (arrivals.length >= expect || idle || now - started > timeoutMs) finish();
  }, SUBSCRIBER_CHECK_MS);
}
