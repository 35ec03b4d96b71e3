// The hub's admin listener: /healthz, /readyz through a Redis outage (degraded but ready, and not
// ready after degraded_not_ready_after_ms), /metrics checked by Prometheus's own promtool and
// followed as key events and JWKS requests arrive, /<namespace>/keys, and SIGTERM with idle
// keep-alive connections open. Every response is also checked against openapi/openapi.yaml.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';

import { getJwks, startHub } from './lib/hub.mjs';
import { generateKey, publishedJwk } from './lib/keys.mjs';
import {
  delay,
  freePort,
  installHardTimeout,
  makeTempDir,
  removeTempDir,
  runCommand,
  waitFor,
} from './lib/proc.mjs';
import { entryIdMs, startRedis } from './lib/redis.mjs';
import { fetchChecked } from './openapi.mjs';

const NS = 'adm';
const NS_OTHER = 'adm-other';
const INSTANCE = 'adm-instance';
const LEASE_MS = 600000;
const RETIRE_GRACE_MS = 60000;
const NOT_READY_AFTER_MS = 500;
const DRAIN_MS = 1000;
// Slack for the sanitizer build on a busy two-core machine.
const SHUTDOWN_SLACK_MS = 2500;
const NOT_READY_SLACK_MS = 1500;

const cancelHardTimeout = installHardTimeout(90000, 'admin.test.mjs');

let dir;
let redis;
let hub;
let strictHub;
let key;
const extraHubs = [];

before(async () => {
  dir = await makeTempDir('admin');
  redis = await startRedis(dir);
  key = await generateKey(dir, 'adm-key', 'ec');
  const common = {
    dir,
    redisUrl: redis.url,
    namespaces: [NS, NS_OTHER],
    keys: { retire_grace_ms: RETIRE_GRACE_MS },
  };
  hub = await startHub({ ...common, env: { KCHUB_SHUTDOWN_DRAIN_MS: String(DRAIN_MS) } });
  strictHub = await startHub({
    ...common,
    env: { KCHUB_DEGRADED_NOT_READY_AFTER_MS: String(NOT_READY_AFTER_MS) },
  });
});

after(async () => {
  // In parallel: a hub waits for idle keep-alive connections (up to its drain time) on SIGTERM.
  await Promise.all([...extraHubs, hub, strictHub].map((target) => target?.stop()));
  await redis?.stop();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

function context(target = hub) {
  return `hub log tail: ${target.lines.slice(-6).join(' | ')}`;
}

/** GETs an admin route of `target`, checked against the description, with the body parsed. */
async function admin(target, path, template = path, init = {}) {
  const result = await fetchChecked(target.adminUrl(path), template, init);
  const isJson = result.headers.get('content-type')?.startsWith('application/json');
  return { ...result, body: isJson && result.text ? JSON.parse(result.text) : undefined };
}

/** Parses Prometheus text into [{ name, labels, value }], ignoring comments. */
function parseSamples(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `metrics line is not "name{labels} value": ${line}`);
    const labels = {};
    const labelPattern = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;
    for (const [, name, value] of (match[2] ?? '').matchAll(labelPattern)) labels[name] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** Returns the value of the sample with this name and these labels (all must match), or 0. */
function sampleValue(samples, name, labels) {
  const sample = samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return sample?.value ?? 0;
}

async function metrics(target = hub) {
  const { text } = await admin(target, '/metrics');
  return parseSamples(text);
}

test('healthz: 200 alive', async () => {
  const { status, body } = await admin(hub, '/healthz');
  assert.equal(status, 200);
  assert.deepEqual(body, { status: 'alive' });
  const head = await admin(hub, '/healthz', '/healthz', { method: 'HEAD' });
  assert.equal(head.status, 200, 'HEAD /healthz');
});

test('readyz: ready after replay', async () => {
  const { status, body } = await admin(hub, '/readyz');
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.status, 'ready');
  assert.deepEqual(
    body.namespaces.map((ns) => ns.name),
    [NS, NS_OTHER],
  );
  for (const ns of body.namespaces) {
    assert.equal(ns.state, 'ready', JSON.stringify(ns));
    assert.equal(ns.replayed, true);
    assert.equal(ns.redis_connected, true);
    assert.equal(ns.reason, undefined, 'a connected namespace has no reason');
  }
});

test('readyz: 503 before replay', async () => {
  // Nothing listens on this port, so the stream is never read.
  const deadRedis = `redis://127.0.0.1:${await freePort()}`;
  const lonely = await startHub({ dir, redisUrl: deadRedis, namespaces: [NS], waitReady: false });
  extraHubs.push(lonely);
  const { status, body } = await admin(lonely, '/readyz');
  assert.equal(status, 503, JSON.stringify(body));
  assert.equal(body.status, 'not_ready');
  assert.equal(body.namespaces[0].state, 'replaying');
  assert.equal(body.namespaces[0].replayed, false);
  assert.equal(body.namespaces[0].redis_connected, false);
  const keys = await admin(lonely, `/${NS}/keys`, '/{namespace}/keys');
  assert.equal(keys.status, 200);
  assert.equal(keys.body.replayed, false);
});

test('keys: published key, then retiring', async () => {
  const jwk = publishedJwk(key, 'adm-kid-1');
  const publishId = await redis.xadd(`${NS}:jwks`, [
    ['v', '1'],
    ['type', 'publish'],
    ['instance', INSTANCE],
    ['kid', jwk.kid],
    ['lease_ms', String(LEASE_MS)],
    ['jwk', JSON.stringify(jwk)],
  ]);
  const path = `/${NS}/keys`;
  const listed = await waitFor(
    async () => {
      const { body } = await admin(hub, path, '/{namespace}/keys');
      return body.keys.find((k) => k.kid === jwk.kid);
    },
    { timeoutMs: 5000, what: `kid ${jwk.kid} in ${path}` },
  );
  assert.equal(listed.instance, INSTANCE);
  assert.equal(listed.state, 'live');
  assert.equal(listed.alg, 'ES256');
  assert.equal(listed.published_at_ms, entryIdMs(publishId));
  assert.equal(listed.lease_end_ms, entryIdMs(publishId) + LEASE_MS);
  assert.equal(listed.retire_at_ms, undefined);

  const retireId = await redis.xadd(`${NS}:jwks`, [
    ['v', '1'],
    ['type', 'retire'],
    ['instance', INSTANCE],
    ['kid', jwk.kid],
  ]);
  const retiring = await waitFor(
    async () => {
      const { body } = await admin(hub, path, '/{namespace}/keys');
      return body.keys.find((k) => k.kid === jwk.kid && k.state === 'retiring');
    },
    { timeoutMs: 5000, what: `kid ${jwk.kid} retiring in ${path}` },
  );
  assert.equal(retiring.retire_at_ms, entryIdMs(retireId) + RETIRE_GRACE_MS);
  assert.equal(retiring.instance, INSTANCE);
  const other = await admin(hub, `/${NS_OTHER}/keys`, '/{namespace}/keys');
  assert.deepEqual(other.body.keys, [], 'the other namespace lists no key');
});

test('keys: unknown namespace 404', async () => {
  const { status, body } = await admin(hub, '/no-such-ns/keys', '/{namespace}/keys');
  assert.equal(status, 404);
  assert.equal(body.error, 'not_found');
  assert.match(body.error_description, /no-such-ns/);
});

test('admin: POST gets 405', async () => {
  for (const path of ['/healthz', '/readyz', '/metrics', `/${NS}/keys`]) {
    const template = path.endsWith('/keys') ? '/{namespace}/keys' : path;
    const { status, body, headers } = await admin(hub, path, template, { method: 'POST' });
    assert.equal(status, 405, `POST ${path}`);
    assert.equal(body.error, 'method_not_allowed');
    assert.equal(headers.get('allow'), 'GET, HEAD', `POST ${path} must name the allowed methods`);
  }
});

test('metrics: promtool accepts output', async () => {
  const { text } = await admin(hub, '/metrics');
  const result = await runCommand('promtool', ['check', 'metrics'], { input: text });
  assert.notEqual(result.error?.code, 'ENOENT', 'promtool not found: run scripts/install-deps.sh');
  assert.equal(result.code, 0, `promtool check metrics: ${result.stdout} ${result.stderr}`);
  const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({
    name,
    type,
  }));
  for (const { name, type } of families) {
    assert.match(name, /^kc_cluster_hub_/, `metric family ${name}`);
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
  }
});

test('metrics: required families present', async () => {
  const { text } = await admin(hub, '/metrics');
  const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map(([, name]) => name);
  const required = {
    'HTTP requests by route and status': /^kc_cluster_hub_http_requests_total$/,
    'request duration histogram': /^kc_cluster_hub_http_request_duration_seconds$/,
    'keys served per namespace': /^kc_cluster_hub_keys_served$/,
    'key events applied': /^kc_cluster_hub_key_events_applied_total$/,
    'key events rejected by reason': /^kc_cluster_hub_key_events_rejected_total$/,
    'stream lag': /^kc_cluster_hub_stream_.*lag/,
    'logouts by result and reason': /^kc_cluster_hub_logouts_total$/,
    'realm JWKS fetches by result': /^kc_cluster_hub_realm_key_fetches_total$/,
    'Redis connection state': /^kc_cluster_hub_redis_(up|connected|connection_state)/,
    'Redis reconnects': /^kc_cluster_hub_redis_reconnects_total$/,
    'build info': /^kc_cluster_hub_build_info$/,
  };
  const missing = Object.entries(required)
    .filter(([, pattern]) => !names.some((name) => pattern.test(name)))
    .map(([family, pattern]) => `${family} (${pattern})`);
  assert.deepEqual(missing, [], `families served: ${names.join(', ')}`);
});

test('metrics: rejected event counted', async () => {
  const labels = { namespace: NS, reason: 'private_member' };
  const name = 'kc_cluster_hub_key_events_rejected_total';
  const before = sampleValue(await metrics(), name, labels);
  const jwk = { ...publishedJwk(key, 'adm-leaked'), d: Buffer.alloc(32, 7).toString('base64url') };
  await redis.xadd(`${NS}:jwks`, [
    ['v', '1'],
    ['type', 'publish'],
    ['instance', 'adm-leaky'],
    ['kid', jwk.kid],
    ['lease_ms', '60000'],
    ['jwk', JSON.stringify(jwk)],
  ]);
  const after = await waitFor(
    async () => {
      const value = sampleValue(await metrics(), name, labels);
      return value > before && value;
    },
    { timeoutMs: 5000, what: `${name}{reason="private_member"} to grow from ${before}` },
  );
  assert.equal(after, before + 1, context());
});

test('metrics: JWKS request counted', async () => {
  const name = 'kc_cluster_hub_http_requests_total';
  const labels = { route: 'jwks', status: '200' };
  const before = sampleValue(await metrics(), name, labels);
  const { status, body } = await getJwks(hub.jwksUrl(NS));
  assert.equal(status, 200);
  // The hub counts a request once its response has been sent, so poll briefly.
  const after = await waitFor(
    async () => {
      const value = sampleValue(await metrics(), name, labels);
      return value > before && value;
    },
    { timeoutMs: 3000, intervalMs: 50, what: `${name}{route="jwks",status="200"} to grow` },
  );
  assert.equal(after, before + 1);
  const served = sampleValue(await metrics(), 'kc_cluster_hub_keys_served', { namespace: NS });
  assert.equal(served, body.keys.length, 'keys_served equals the JWKS length');
  const ready = await admin(hub, '/readyz');
  const state = ready.body.namespaces.find((ns) => ns.name === NS);
  assert.equal(state.keys_served, body.keys.length, 'readyz keys_served equals the JWKS length');
});

/** Polls target's /readyz until predicate(result) holds; returns the result and when. */
function waitForReadiness(target, predicate, what, timeoutMs = 8000) {
  return waitFor(
    async () => {
      const result = await admin(target, '/readyz');
      return predicate(result) && { ...result, at: Date.now() };
    },
    { timeoutMs, intervalMs: 50, what },
  );
}

test('readyz: Redis outage and recovery', { timeout: 40000 }, async () => {
  const jwksBefore = await getJwks(hub.jwksUrl(NS));
  // The restarted server loads this snapshot, so the hubs find their streams as they left them.
  await redis.cli(['SAVE']);
  const stoppedAt = Date.now();
  await redis.stop();

  const degraded = await waitForReadiness(
    hub,
    (r) => r.body.status === 'degraded',
    'readyz status degraded',
  );
  assert.equal(degraded.status, 200, 'a degraded hub stays ready');
  for (const ns of degraded.body.namespaces) {
    assert.equal(ns.state, 'degraded', JSON.stringify(ns));
    assert.equal(ns.redis_connected, false);
    assert.equal(typeof ns.reason, 'string');
    assert.ok(ns.reason.length > 0, 'the reason is not empty');
    assert.ok(ns.redis_state_since_ms >= stoppedAt - 1000, `since ${ns.redis_state_since_ms}`);
    assert.ok(ns.redis_state_since_ms <= degraded.at, `since ${ns.redis_state_since_ms}`);
  }
  const jwksDuring = await getJwks(hub.jwksUrl(NS));
  assert.equal(jwksDuring.status, 200, 'the JWKS is still served');
  assert.equal(jwksDuring.text, jwksBefore.text, 'the JWKS is unchanged');

  const notReady = await waitForReadiness(
    strictHub,
    (r) => r.status === 503,
    `readyz 503 after ${NOT_READY_AFTER_MS} ms`,
  );
  assert.equal(notReady.body.status, 'not_ready');
  const since = Math.min(...notReady.body.namespaces.map((ns) => ns.redis_state_since_ms));
  const waited = notReady.at - since;
  assert.ok(waited >= NOT_READY_AFTER_MS, `503 came ${waited} ms after Redis was lost`);
  assert.ok(waited <= NOT_READY_AFTER_MS + NOT_READY_SLACK_MS, `503 came after ${waited} ms`);
  for (const ns of notReady.body.namespaces) assert.equal(ns.state, 'degraded');

  redis = await startRedis(dir, { port: redis.port });
  for (const target of [hub, strictHub]) {
    const back = await waitForReadiness(
      target,
      (r) => r.status === 200 && r.body.status === 'ready',
      'readyz ready again after Redis is back',
      10000,
    );
    for (const ns of back.body.namespaces) assert.equal(ns.redis_connected, true);
  }
  const jwksAfter = await getJwks(hub.jwksUrl(NS));
  assert.equal(jwksAfter.text, jwksBefore.text, 'the JWKS is the same after the outage');
});

/** Opens a keep-alive connection, completes one GET on it and leaves it open and idle. */
function idleConnection(port, path) {
  return new Promise((resolveOpen, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(5000, () => reject(new Error(`no response to GET ${path} on ${port}`)));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
    });
    socket.once('data', (chunk) => {
      socket.setTimeout(0);
      socket.on('error', () => {}); // the hub closes it when it stops
      assert.match(chunk.toString('latin1'), /^HTTP\/1\.1 200 /);
      resolveOpen(socket);
    });
  });
}

test('sigterm: exits 0 within drain', async () => {
  const sockets = [
    await idleConnection(hub.port, `/${NS}/jwks`),
    await idleConnection(hub.adminPort, '/healthz'),
  ];
  await delay(100);
  const started = Date.now();
  hub.child.kill('SIGTERM');
  const timer = setTimeout(() => hub.child.kill('SIGKILL'), DRAIN_MS + SHUTDOWN_SLACK_MS + 5000);
  const { code, signal } = await hub.child.exited;
  clearTimeout(timer);
  const elapsed = Date.now() - started;
  for (const socket of sockets) socket.destroy();
  assert.equal(signal, null, `the hub was killed by ${signal}; ${context()}`);
  assert.equal(code, 0, context());
  assert.ok(elapsed <= DRAIN_MS + SHUTDOWN_SLACK_MS, `the hub took ${elapsed} ms to exit`);
});
