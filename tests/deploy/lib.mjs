// Readers for the deployment files that the deploy tests check: the Dockerfile, the compose
// file, the Kubernetes manifests, the realm and the Redis ACL template. YAML goes through the
// `yaml` package of tests/integration (a real YAML 1.2 parser, with merge keys for compose).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot, buildDir } from '../integration/lib/proc.mjs';

const requireFromIntegration = createRequire(join(repoRoot, 'tests', 'integration', 'package.json'));
const YAML = requireFromIntegration('yaml');

export { repoRoot, buildDir };
export const deployDir = join(repoRoot, 'deploy');
export const hubBinary = join(buildDir, 'kc-cluster-hub');

/** Returns the access string of a Redis user confined to one application environment's namespace. */
export function namespaceAccessString(namespace) {
  return (
    `on ~${namespace}:* &${namespace}:* -@all +@fast +@pubsub +@keyspace +@string +@read ` +
    '+@write +@scripting -@dangerous +client|setname +info'
  );
}

export function readText(...parts) {
  return readFileSync(join(repoRoot, ...parts), 'utf8');
}

/** Parses one YAML document strictly: duplicate keys and syntax errors throw. */
export function parseYaml(text, { merge = false } = {}) {
  return YAML.parse(text, { merge, uniqueKeys: true, prettyErrors: true });
}

/** Parses every document of a YAML file; throws on the first document with errors. */
export function parseYamlDocuments(text) {
  return YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true }).map((doc) => {
    if (doc.errors.length > 0) throw doc.errors[0];
    return doc.toJS();
  });
}

export function loadCompose() {
  return parseYaml(readText('deploy', 'docker-compose.yml'), { merge: true });
}

/**
 * Splits the Dockerfile into stages: { name, base, instructions: [{ keyword, args }] }, with
 * continuation lines joined and comments dropped.
 */
export function parseDockerfile() {
  const stages = [];
  let pending = '';
  for (const raw of readText('Dockerfile').split('\n')) {
    if (pending === '' && /^\s*(#|$)/.test(raw)) continue;
    const continued = /\\\s*$/.test(raw);
    pending += continued ? raw.replace(/\\\s*$/, ' ') : raw;
    if (continued) continue;
    const line = pending.trim().replace(/\s+/g, ' ');
    pending = '';
    const [keyword, ...rest] = line.split(' ');
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const match = /^(\S+) AS (\S+)$/i.exec(args);
      if (!match) throw new Error(`Dockerfile: every stage needs a name, got "FROM ${args}"`);
      stages.push({ base: match[1], name: match[2], instructions: [] });
    } else {
      stages.at(-1).instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/** Returns the NAME=VALUE pairs of a stage's ENV instructions as an object. */
export function stageEnv(stage) {
  const env = {};
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    for (const pair of args.split(' ')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`Dockerfile ENV: expected NAME=VALUE pairs, got "${args}"`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** Returns the port of a HOST:PORT listen address as a number. */
export function listenPort(address) {
  const match = /:(\d+)$/.exec(address ?? '');
  if (!match) throw new Error(`expected HOST:PORT, got "${address}"`);
  return Number(match[1]);
}

/** Splits a compose "HOST_IP:HOST_PORT:CONTAINER_PORT" port entry. */
export function composePort(entry) {
  const match = /^(?:([\d.]+):)?(\d+):(\d+)$/.exec(String(entry));
  if (!match) throw new Error(`compose port "${entry}": expected [IP:]HOST_PORT:CONTAINER_PORT`);
  return { hostIp: match[1] ?? null, hostPort: Number(match[2]), containerPort: Number(match[3]) };
}

/** Returns the ACL template's users, [{ name, rules, passwordPlaceholder }], without comments. */
export function parseAclTemplate() {
  const users = [];
  for (const line of readText('deploy', 'redis', 'users.acl').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^user (\S+) (.*?)(?: #(@[A-Z0-9_]+@))?$/.exec(line);
    if (!match) throw new Error(`users.acl: not a "user NAME RULES" line: ${line}`);
    users.push({ name: match[1], rules: match[2], passwordPlaceholder: match[3] ?? null });
  }
  return users;
}

/** Returns the user name of a redis:// or rediss:// URL. */
export function redisUrlUser(url) {
  return decodeURIComponent(new URL(url).username);
}
