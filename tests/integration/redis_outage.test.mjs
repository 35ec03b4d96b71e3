// The hub while Redis goes away, loses its data or stalls: the JWKS stays served from memory the
// whole time, the hub reconnects and reads what was published meanwhile, a FLUSHALL or an empty
// restart never drops a live key, the hub writes the live keys back (re-seed) so a hub replica
// that starts after the loss serves them too, and a Redis that does not answer for seconds does
// not slow a JWKS request.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { startPublish } from './lib/ctl.mjs';
import { fetchWithTimeout, kidsOf, startHub, waitForJwks } from './lib/hub.mjs';
import { generateKey } from './lib/keys.mjs';
import { delay, installHardTimeout, makeTempDir, removeTempDir, waitFor } from './lib/proc.mjs';
import { startRedisServer } from './lib/redis_server.mjs';

const OUTAGE = 'outage';
const FLUSH = 'flush';
const RESTART = 'restart';
const PAUSE = 'pause';
const NAMESPACES = [OUTAGE, FLUSH, RESTART, PAUSE];
const OUTAGE_MS = 10000;
// The hub checks every stream for lost entries every 5 s; a resync takes a few ms more.
const LOSS_DETECT_TIMEOUT_MS = 12000;
// A request served from memory; generous for the sanitizer build on a busy machine.
const FAST_RESPONSE_MS = 250;
// A free admin port for each hub and no drain delay at stop; a hub without these settings
// ignores the variables.
const HUB_ENV = { KCHUB_ADMIN_LISTEN: '127.0.0.1:0', KCHUB_SHUTDOWN_DRAIN_MS: '0' };
// AOF keeps the data across the planned stop, so only the tests that mean to lose it do.
const REDIS_ARGS = ['--appendonly', 'yes', '--enable-debug-command', 'local'];

const cancelHardTimeout = installHardTimeout(170000, 'redis_outage.test.mjs');

let dir;
let redis;
let hub;
const publishers = [];
const extraHubs = [];

before(async () => {
  dir = await makeTempDir('outage');
  redis = await startRedisServer(dir, { args: REDIS_ARGS });
  hub = await startHub({ dir, redisUrl: redis.url, namespaces: NAMESPACES, env: HUB_ENV });
});

after(async () => {
  for (const publisher of publishers) await publisher.stop('SIGKILL', 2000);
  for (const other of [...extraHubs, hub]) await other?.stop();
  redis?.resume();
  await redis?.kill();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

function publish(name, key, namespace, flags = {}) {
  const publisher = startPublish({
    dir,
    name,
    flags: {
      namespace,
      key: key.pemPath,
      'redis-url': redis.url,
      instance: name,
      'safe-window-ms': 0,
      ...flags,
    },
  });
  publishers.push(publisher);
  return publisher;
}

/** Restarts Redis on its port; with empty, its data dir is removed first, as after a lost disk. */
async function restartRedis({ empty }) {
  if (empty) {
    await redis.kill();
    await rm(join(dir, 'redis'), { recursive: true, force: true });
  } else {
    await redis.stop();
  }
  redis = await startRedisServer(dir, { port: redis.port, args: REDIS_ARGS });
}

/**
 * Polls url every intervalMs while work() runs, and once more after. Each response must be 200
 * and contain every kid of mustServe(). Returns { polls, maxMs, failures }.
 */
async function pollWhile(url, mustServe, work, intervalMs = 100) {
  const stats = { polls: 0, maxMs: 0, failures: [] };
  let running = true;
  const poller = (async () => {
    while (running) {
      const started = performance.now();
      try {
        const response = await fetchWithTimeout(url);
        const body = await response.json();
        const ms = performance.now() - started;
        stats.maxMs = Math.max(stats.maxMs, ms);
        const missing = mustServe().filter((kid) => !kidsOf(body).includes(kid));
        if (response.status !== 200 || missing.length > 0)
          stats.failures.push(`status ${response.status}, missing ${missing.join(',')}`);
      } catch (error) {
        stats.failures.push(error.message);
      }
      stats.polls++;
      await delay(intervalMs);
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await poller;
  }
  return stats;
}

function streamEntries(namespace) {
  return redis.cli(['XRANGE', `${namespace}:jwks`, '-', '+'], { json: true }).then((out) => {
    const entries = JSON.parse(out.trim() || '[]');
    return entries.map(([id, flat]) => {
      const fields = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
      return { id, fields };
    });
  });
}

test('outage keeps serving and catches up', async () => {
  const steady = await generateKey(dir, 'outage-steady', 'ec');
  const late = await generateKey(dir, 'outage-late', 'ed25519');
  publish('outage-steady', steady, OUTAGE, { 'lease-ms': 60000 });
  await waitForJwks(hub.jwksUrl(OUTAGE), (body) => kidsOf(body).includes(steady.thumbprint));

  const linesBefore = hub.lines.length;
  const stats = await pollWhile(
    hub.jwksUrl(OUTAGE),
    () => [steady.thumbprint],
    async () => {
      await redis.stop();
      publish('outage-late', late, OUTAGE, { 'lease-ms': 60000 }); // retries until Redis is back
      await delay(OUTAGE_MS);
      redis = await startRedisServer(dir, { port: redis.port, args: REDIS_ARGS });
      await waitForJwks(hub.jwksUrl(OUTAGE), (body) => kidsOf(body).includes(late.thumbprint), {
        timeoutMs: 15000,
        what: 'the key published during the outage',
      });
    },
  );
  assert.deepEqual(stats.failures, [], 'every poll returned 200 with the steady key');
  assert.ok(stats.polls > OUTAGE_MS / 200, `polled through the outage (${stats.polls} polls)`);

  const during = hub.lines.slice(linesBefore);
  const lost = during.filter((line) => line.includes('ERROR') && line.includes('redis:'));
  assert.equal(lost.length, 1, `one error line for the outage: ${lost.join(' | ')}`);
  assert.match(lost[0], /retrying with backoff/);
  const back = during.filter((line) => line.includes('reconnected to Redis'));
  assert.equal(back.length, 1, `one line for the reconnect: ${back.join(' | ')}`);
  assert.match(back[0], /after \d+ failed attempts/);
});

test('flushall keeps and re-seeds live keys', async () => {
  const once = await generateKey(dir, 'flush-once', 'ec');
  const renewing = await generateKey(dir, 'flush-renewing', 'ed25519');
  publish('flush-once', once, FLUSH, { 'lease-ms': 60000, once: true });
  publish('flush-renewing', renewing, FLUSH, { 'lease-ms': 3000 });
  const both = () => [once.thumbprint, renewing.thumbprint];
  await waitForJwks(hub.jwksUrl(FLUSH), (body) => both().every((k) => kidsOf(body).includes(k)));

  const stats = await pollWhile(hub.jwksUrl(FLUSH), both, async () => {
    await redis.cli(['FLUSHALL']);
    await hub.waitForLog((line) => line.includes(`namespace ${FLUSH}: re-seeded`), {
      timeoutMs: LOSS_DETECT_TIMEOUT_MS,
      what: 'the re-seed after FLUSHALL',
    });
  });
  assert.deepEqual(stats.failures, [], 'the JWKS kept both keys through the FLUSHALL');
  assert.ok(
    hub.lines.some((line) => line.includes(`namespace ${FLUSH}: Redis lost key events`)),
    'the resync is logged',
  );

  const entries = await streamEntries(FLUSH);
  const reseeded = entries.filter((e) => e.fields.kid === once.thumbprint && e.fields.reseeded_by);
  assert.equal(reseeded.length, 1, 'the key without renewals was written back once');
  assert.equal(reseeded[0].fields.type, 'publish');
  assert.equal(reseeded[0].fields.instance, 'flush-once');
  const lease = Number(reseeded[0].fields.lease_ms);
  assert.ok(lease > 40000, `the remaining lease is written (${lease} ms)`);
  assert.ok(lease < 60000, `the lease is not restarted (${lease} ms)`);
  await waitFor(
    async () =>
      (await streamEntries(FLUSH)).some(
        (e) => e.fields.kid === renewing.thumbprint && !e.fields.reseeded_by,
      ),
    { timeoutMs: 5000, what: 'a renewal of the renewing key in the new stream' },
  );

  const fresh = await startHub({ dir, redisUrl: redis.url, namespaces: [FLUSH], env: HUB_ENV });
  extraHubs.push(fresh);
  const served = await waitForJwks(fresh.jwksUrl(FLUSH), () => true);
  assert.deepEqual(kidsOf(served).sort(), both().sort(), 'a hub started after the loss serves both');
});

test('empty restart keeps live keys', async () => {
  const once = await generateKey(dir, 'restart-once', 'rsa');
  publish('restart-once', once, RESTART, { 'lease-ms': 60000, once: true });
  await waitForJwks(hub.jwksUrl(RESTART), (body) => kidsOf(body).includes(once.thumbprint));

  const stats = await pollWhile(
    hub.jwksUrl(RESTART),
    () => [once.thumbprint],
    async () => {
      await restartRedis({ empty: true });
      await hub.waitForLog((line) => line.includes(`namespace ${RESTART}: re-seeded 1 `), {
        timeoutMs: LOSS_DETECT_TIMEOUT_MS,
        what: 'the re-seed after the empty restart',
      });
    },
  );
  assert.deepEqual(stats.failures, [], 'the JWKS kept the key through the restart');
  assert.ok(
    hub.lines.some((line) => line.includes(`${RESTART}:jwks is gone`)),
    'the loss of the stream is logged',
  );
  const fresh = await startHub({
    dir,
    redisUrl: redis.url,
    namespaces: [RESTART],
    env: HUB_ENV,
  });
  extraHubs.push(fresh);
  assert.deepEqual(kidsOf(await waitForJwks(fresh.jwksUrl(RESTART), () => true)), [
    once.thumbprint,
  ]);
});

test('paused redis does not slow requests', async () => {
  const key = await generateKey(dir, 'pause-key', 'ec');
  publish('pause-key', key, PAUSE, { 'lease-ms': 60000 });
  await waitForJwks(hub.jwksUrl(PAUSE), (body) => kidsOf(body).includes(key.thumbprint));

  const debugSleep = await pollWhile(
    hub.jwksUrl(PAUSE),
    () => [key.thumbprint],
    () => redis.cli(['DEBUG', 'SLEEP', '3']),
    50,
  );
  assert.deepEqual(debugSleep.failures, []);
  assert.ok(debugSleep.polls >= 20, `polled during DEBUG SLEEP (${debugSleep.polls} polls)`);
  assert.ok(debugSleep.maxMs < FAST_RESPONSE_MS, `slowest response ${debugSleep.maxMs} ms`);

  const stopped = await pollWhile(
    hub.jwksUrl(PAUSE),
    () => [key.thumbprint],
    async () => {
      redis.pause();
      await delay(3000);
      redis.resume();
    },
    50,
  );
  assert.deepEqual(stopped.failures, []);
  assert.ok(stopped.maxMs < FAST_RESPONSE_MS, `slowest response ${stopped.maxMs} ms`);
});
