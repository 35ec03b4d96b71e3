// End to end: the certified OpenID provider oidc-provider sends back-channel logouts to the hub,
// which validates them against the provider's own JWKS, found through discovery. The hub hands
// each logout to every instance: kc-cluster-ctl listen processes (live, and from the stream's
// start) and a plain pub/sub subscriber. Also covers a listener that was down while a logout was
// sent and resumes with --from, and listeners whose Redis connection is killed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startListen } from './lib/ctl.mjs';
import { startHub } from './lib/hub.mjs';
import { generateKey, privateJwkOf } from './lib/keys.mjs';
import { NOTICE_MEMBERS, latestNotices, logoutChannel } from './lib/logout.mjs';
import {
  delay,
  freePort,
  installHardTimeout,
  makeTempDir,
  removeTempDir,
  waitFor,
} from './lib/proc.mjs';
import { startLogoutProvider } from './lib/provider.mjs';
import { clientList, startRedis, subscribeChannel } from './lib/redis.mjs';

const NS = 'app';
const CLIENT_ID = 'app';
// How long a listener gets to print something it should not, before the test counts its output.
const SETTLE_MS = 500;

const cancelHardTimeout = installHardTimeout(120000, 'logout_e2e.test.mjs');

let dir;
let redis;
let hub;
let provider;
let subscriber;
const listeners = {};
// Every logout sent, in order: { sub, sid }.
const sent = [];

before(async () => {
  dir = await makeTempDir('logout-e2e');
  redis = await startRedis(dir);
  const key = await generateKey(dir, 'provider', 'rsa');
  const privateJwk = await privateJwkOf(key);
  const signingJwk = { ...privateJwk, kid: key.thumbprint, use: 'sig', alg: 'RS256' };

  // The provider's client needs the hub's URL, and the hub the provider's issuer: pick both ports
  // first. The provider contacts the hub only when a logout is sent.
  const hubPort = await freePort();
  provider = await startLogoutProvider({
    port: await freePort(),
    signingJwk,
    backchannelLogoutUri: `http://127.0.0.1:${hubPort}/${NS}/backchannel-logout`,
  });
  hub = await startHub({
    dir,
    redisUrl: redis.url,
    port: hubPort,
    namespaces: [{ name: NS, logout: { issuer: provider.issuer, client_id: CLIENT_ID } }],
  });

  subscriber = await subscribeChannel(redis.port, logoutChannel(NS));
  listeners.live = startListen({ dir, name: 'live', flags: listenFlags() });
  await waitForBlockedListeners(1);
});

after(async () => {
  for (const listener of Object.values(listeners)) await listener.stop('SIGKILL', 2000);
  await subscriber?.stop();
  await provider?.close();
  await hub?.stop();
  await redis?.stop();
  if (dir && !process.env.KCHUB_TEST_KEEP_TMP) await removeTempDir(dir);
  cancelHardTimeout();
});

function listenFlags(extra = {}) {
  return { namespace: NS, 'redis-url': redis.url, ...extra };
}

/** Connections without a client name blocked in XREAD: the listeners (the hub names its own). */
async function blockedListenerConnections() {
  const clients = await clientList(redis.port);
  return clients.filter(
    (client) => client.name === '' && client.cmd === 'xread' && client.flags.includes('b'),
  );
}

/** Waits until `count` listeners wait in XREAD BLOCK, so a logout sent now reaches them. */
async function waitForBlockedListeners(count) {
  try {
    await waitFor(async () => (await blockedListenerConnections()).length >= count, {
      timeoutMs: 10000,
      intervalMs: 50,
      what: `${count} kc-cluster-ctl listen connection(s) blocked in XREAD`,
    });
  } catch (error) {
    const logs = Object.entries(listeners).map(([name, item]) => `${name}: ${item.describe()}`);
    throw new Error(`${error.message}; ${logs.join('; ')}`);
  }
}

function context() {
  return `hub log tail: ${hub.lines.slice(-6).join(' | ')}; provider: ${provider.events}`;
}

/** Sends a logout for sub and sid from the provider. Rejects unless the hub returned 200 or 204. */
async function sendLogout(sub, sid) {
  const client = await provider.provider.Client.find(CLIENT_ID);
  assert.ok(client, `oidc-provider has no client ${CLIENT_ID}`);
  try {
    await client.backchannelLogout(sub, sid);
  } catch (error) {
    throw new Error(`oidc-provider's back-channel logout failed: ${error.message}; ${context()}`);
  }
  sent.push({ sub, sid });
}

/** Checks a printed line against the stream entry it came from. */
function assertPrinted(printed, entry, where) {
  assert.deepEqual(Object.keys(printed), ['id', ...NOTICE_MEMBERS], where);
  assert.equal(printed.id, entry.id, where);
  const { id, ...members } = printed;
  assert.deepEqual(members, entry.notice, where);
}

/** Checks that a listener printed exactly the logouts in `expected` ({ sub, sid }), in order. */
function assertPrintedLogouts(listener, expected, name) {
  const where = `${name}: ${listener.describe()}`;
  const printed = listener.notices();
  assert.equal(printed.length, expected.length, where);
  expected.forEach(({ sub, sid }, index) => {
    assert.equal(printed[index].sub, sub, where);
    assert.equal(printed[index].sid, sid, where);
  });
  const ids = printed.map((notice) => notice.id);
  assert.equal(new Set(ids).size, ids.length, `${name} printed an ID twice: ${ids}`);
}

test('logout: live listener prints it', { timeout: 20000 }, async () => {
  const before = Date.now();
  await sendLogout('user-1', 'sid-1');
  const [printed] = await listeners.live.waitForNotices(1);
  const [entry] = await latestNotices(redis, NS, 1);
  assertPrinted(printed, entry, `live listener line vs stream entry ${entry.text}`);

  const { notice } = entry;
  assert.equal(notice.v, 1);
  assert.equal(notice.iss, provider.issuer);
  assert.equal(notice.sub, 'user-1');
  assert.equal(notice.sid, 'sid-1');
  assert.equal(typeof notice.jti, 'string');
  assert.ok(notice.jti.length > 0, 'empty jti');
  assert.ok(Math.abs(notice.iat * 1000 - before) < 5000, `iat ${notice.iat} is not now`);
  assert.equal(notice.exp, notice.iat + 120, 'oidc-provider sets exp = iat + 120');
  assert.equal(notice.revoke_offline_access, false);
  assert.ok(notice.received_at_ms >= before - 1000, `received_at_ms ${notice.received_at_ms}`);

  const [message] = await subscriber.waitForMessages(1);
  assert.equal(message, entry.text, 'pub/sub message differs from the stream notice');
});

test('listen --from 0: prints history', { timeout: 20000 }, async () => {
  listeners.history = startListen({ dir, name: 'history', flags: listenFlags({ from: '0' }) });
  await listeners.history.waitForNotices(1);
  await waitForBlockedListeners(2);
  await delay(SETTLE_MS);
  assertPrintedLogouts(listeners.history, sent, 'history listener');
  assert.deepEqual(listeners.history.notices(), listeners.live.notices());
});

test('logout: both listeners print next', { timeout: 20000 }, async () => {
  await sendLogout('user-2', 'sid-2');
  await listeners.live.waitForNotices(2);
  await listeners.history.waitForNotices(2);
  await delay(SETTLE_MS);
  assertPrintedLogouts(listeners.live, sent, 'live listener');
  assertPrintedLogouts(listeners.history, sent, 'history listener');
  const [entry] = await latestNotices(redis, NS, 1);
  assertPrinted(listeners.live.notices()[1], entry, 'second notice');
});

test('listen: --from resumes after restart', { timeout: 30000 }, async () => {
  const stopped = listeners.live;
  const { code, signal } = await stopped.stop('SIGTERM', 5000);
  assert.equal(signal, null, `listener ended by signal ${signal}; ${stopped.describe()}`);
  assert.equal(code, 0, `listener exit status on SIGTERM; ${stopped.describe()}`);
  const lastId = stopped.notices().at(-1).id;

  // Sent while that instance is down.
  await sendLogout('user-3', 'sid-3');
  await listeners.history.waitForNotices(3);

  listeners.resumed = startListen({ dir, name: 'resumed', flags: listenFlags({ from: lastId }) });
  await listeners.resumed.waitForNotices(1);
  await waitForBlockedListeners(2);
  await delay(SETTLE_MS);
  assertPrintedLogouts(listeners.resumed, sent.slice(2), 'resumed listener');
  const [entry] = await latestNotices(redis, NS, 1);
  assertPrinted(listeners.resumed.notices()[0], entry, 'missed notice');

  // It keeps following after the catch-up.
  await sendLogout('user-4', 'sid-4');
  await listeners.resumed.waitForNotices(2);
  await listeners.history.waitForNotices(4);
  assertPrintedLogouts(listeners.resumed, sent.slice(2), 'resumed listener');
});

test('listen: reconnects after connection loss', { timeout: 30000 }, async () => {
  const connections = await blockedListenerConnections();
  const where = `blocked listener connections: ${JSON.stringify(connections)}`;
  assert.equal(connections.length, 2, where);
  for (const connection of connections) {
    await redis.cli(['CLIENT', 'KILL', 'ID', connection.id]);
  }
  await sendLogout('user-5', 'sid-5');
  await listeners.history.waitForNotices(5, { timeoutMs: 15000 });
  await listeners.resumed.waitForNotices(3, { timeoutMs: 15000 });
  await delay(SETTLE_MS);
  assertPrintedLogouts(listeners.history, sent, 'history listener');
  assertPrintedLogouts(listeners.resumed, sent.slice(2), 'resumed listener');
});

test('pub/sub: subscriber got every notice', { timeout: 10000 }, async () => {
  await subscriber.waitForMessages(sent.length);
  await delay(SETTLE_MS);
  const entries = await latestNotices(redis, NS, 100);
  assert.equal(entries.length, sent.length, 'notices in the stream');
  const texts = entries.map((entry) => entry.text);
  assert.deepEqual(subscriber.messages(), texts, 'pub/sub messages vs stream notices');
});

test('ctl and hub: SIGTERM exits 0', { timeout: 20000 }, async () => {
  for (const name of ['history', 'resumed']) {
    const { code, signal } = await listeners[name].stop('SIGTERM', 5000);
    assert.equal(signal, null, `${name} listener ended by signal ${signal}`);
    assert.equal(code, 0, `${name} listener exit status; ${listeners[name].describe()}`);
  }
  const { code, signal } = await hub.stop();
  assert.equal(signal, null, `hub ended by signal ${signal}`);
  assert.equal(code, 0, `hub exit status; ${context()}`);
});
