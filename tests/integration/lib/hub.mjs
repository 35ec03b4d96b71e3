// Starts the real kc-cluster-hub binary with a config file written here, captures its stderr (to
// a file and to an array the tests assert on), and reads its JWKS over HTTP.
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  buildDir,
  cleanEnv,
  collectLines,
  freePort,
  spawnTracked,
  stopChild,
  waitFor,
} from './proc.mjs';

export const hubBinary = join(buildDir, 'kc-cluster-hub');

/**
 * Starts the hub for `namespaces` against redisUrl. A namespace is a name, or an object written to
 * the config file as it is ({ name, logout }). `keys` and `jwks` are merged into the config file's
 * members of the same name, and `extraConfig` into its top level (for example
 * http_body_max_bytes). `port` picks the listen port, a free one by default. Resolves once GET
 * returns 200 for every namespace, which means its first stream replay is done. Returns a hub
 * handle: { port, baseUrl, adminPort, adminUrl(path), child, lines, logPath, configPath,
 * jwksUrl(ns), logoutUrl(ns), waitForLog(predicate, opts), rejectionLines(), stop() }. The admin
 * routes listen on a free port of their own, so hubs that run at once do not collide on the
 * default 8081. `extraConfig.admin_listen` overrides the address, and so does KCHUB_ADMIN_LISTEN
 * in `env`, but adminPort and adminUrl follow the config file only. With waitReady false it
 * resolves once the HTTP port accepts connections, whatever the status.
 */
export async function startHub({
  dir,
  redisUrl,
  namespaces,
  keys = {},
  jwks = {},
  env = {},
  waitReady = true,
  extraConfig = {},
  port: requestedPort,
}) {
  const port = requestedPort ?? (await freePort());
  const config = {
    listen: `127.0.0.1:${port}`,
    admin_listen: `127.0.0.1:${await freePort()}`,
    http_threads: 2,
    log_level: 'info',
    log_format: 'text',
    redis: { url: redisUrl, client_name: 'kc-cluster-hub-test' },
    keys: { lease_max_ms: 3600000, retire_grace_ms: 120000, clock_ahead_max_ms: 5000, ...keys },
    jwks: { cache_control: 'no-cache', ...jwks },
    namespaces: namespaces.map((ns) => (typeof ns === 'string' ? { name: ns } : ns)),
    ...extraConfig,
  };
  const adminPort = Number(config.admin_listen.split(':').pop());
  const configPath = join(dir, `hub-${port}.json`);
  await writeFile(configPath, JSON.stringify(config, null, 2));

  const logPath = join(dir, `hub-${port}.log`);
  const logFile = createWriteStream(logPath);
  const child = spawnTracked(hubBinary, ['--config', configPath], { env: cleanEnv(env) });
  child.once('close', () => logFile.end()); // 'close' comes after the last stdio data
  const lines = [];
  const listeners = new Set();
  collectLines(child.stdout, lines, logFile, []);
  collectLines(child.stderr, lines, logFile, [(line) => listeners.forEach((fn) => fn(line))]);

  const baseUrl = `http://127.0.0.1:${port}`;
  const hub = {
    port,
    baseUrl,
    adminPort,
    adminUrl: (path) => `http://${config.admin_listen}${path}`,
    child,
    lines,
    logPath,
    configPath,
    jwksUrl: (ns) => `${baseUrl}/${ns}/jwks`,
    logoutUrl: (ns) => `${baseUrl}/${ns}/backchannel-logout`,
    waitForLog: (predicate, opts) => waitForLine(hub, listeners, predicate, opts),
    rejectionLines: () => lines.filter((line) => line.includes('rejected key event')),
    stop: () => stopChild(child, { signal: 'SIGTERM', timeoutMs: 5000 }),
  };

  try {
    for (const { name: ns } of config.namespaces) {
      await waitFor(
        async () => {
          if (child.exitCode !== null) {
            throw new Error(`kc-cluster-hub exited with ${child.exitCode}: ${tail(lines)}`);
          }
          const response = await fetchWithTimeout(hub.jwksUrl(ns));
          await response.arrayBuffer();
          return !waitReady || response.status === 200;
        },
        { timeoutMs: 15000, intervalMs: 100, what: `GET ${hub.jwksUrl(ns)} returning 200` },
      );
    }
  } catch (error) {
    await hub.stop();
    throw error;
  }
  return hub;
}

function tail(lines, count = 10) {
  return lines.slice(-count).join(' | ');
}

/** Resolves with the first captured line (already seen or new) for which predicate is true. */
function waitForLine(
  hub,
  listeners,
  predicate,
  { timeoutMs = 10000, what = 'a hub log line' } = {},
) {
  const seen = hub.lines.find(predicate);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolveLine, reject) => {
    const listener = (line) => {
      if (!predicate(line)) return;
      cleanup();
      resolveLine(line);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; last lines: ${tail(hub.lines)}`,
        ),
      );
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      listeners.delete(listener);
    };
    listeners.add(listener);
  });
}

/** fetch() with a 5 s abort, so a hung server fails the request instead of the test run. */
export function fetchWithTimeout(url, options = {}) {
  return fetch(url, { signal: AbortSignal.timeout(5000), ...options });
}

/** GETs a JWKS URL and returns { status, headers, text, body } (body parsed when JSON). */
export async function getJwks(url, headers = {}) {
  const response = await fetchWithTimeout(url, { headers });
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}

/** Returns the kids of a JWKS body, in served order. */
export function kidsOf(body) {
  return (body?.keys ?? []).map((key) => key.kid);
}

/**
 * Polls the JWKS at url every intervalMs until predicate(body) holds on a 200 response, and
 * returns that body. Throws after timeoutMs with the last body seen.
 */
export function waitForJwks(url, predicate, { timeoutMs = 10000, intervalMs = 100, what } = {}) {
  return waitFor(
    async () => {
      const result = await getJwks(url);
      if (result.status === 200 && predicate(result.body)) return result.body;
      return false;
    },
    { timeoutMs, intervalMs, what: what ?? `JWKS at ${url} to match` },
  );
}

/** Returns the rejection line's parts: { id, namespace, instance, reason } or undefined. */
export function parseRejection(line) {
  const match = /rejected key event id=(\S+) namespace=(\S+) instance=(\S+) reason=([a-z_]+):/.exec(
    line,
  );
  if (!match) return undefined;
  const [, id, namespace, instance, reason] = match;
  return { id, namespace, instance, reason };
}
