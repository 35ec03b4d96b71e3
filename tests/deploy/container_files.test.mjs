// Static checks of the Dockerfile and deploy/docker-compose.yml: the files parse, name files
// and stages that exist, use the ports the hub really listens on, and configure the hub, Redis
// and the demo instances consistently. The hub itself validates the settings (--check-config).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cleanEnv, makeTempDir, removeTempDir, runCommand } from '../integration/lib/proc.mjs';
import {
  composePort, deployDir, hubBinary, listenPort, loadCompose, namespaceAccessString,
  parseAclTemplate, parseDockerfile, redisUrlUser, repoRoot, stageEnv,
} from './lib.mjs';

const stages = parseDockerfile();
const hubStage = stages.find((stage) => stage.name === 'hub');
const hubImageEnv = stageEnv(hubStage);
const compose = loadCompose();
const services = compose.services;

/** The hub's settings in compose: the image's ENV, then the service's environment. */
const hubComposeEnv = { ...hubImageEnv, ...services.hub.environment };

/** Runs kc-cluster-hub --check-config with only the given KCHUB_* variables. */
function checkConfig(env, args = []) {
  return runCommand(hubBinary, [...args, '--check-config'], { env: cleanEnv(env) });
}

/** Replaces the container paths of secrets with files in dir, as --check-config reads them. */
async function withLocalSecrets(env, dir) {
  const local = { ...env };
  for (const name of ['KCHUB_REDIS_PASSWORD_FILE', 'KCHUB_REDIS_TLS_CA_FILE']) {
    if (local[name] === undefined) continue;
    local[name] = join(dir, name.toLowerCase());
    await writeFile(local[name], 'placeholder\n', { mode: 0o600 });
  }
  return local;
}

test('dockerfile: stages on Debian 12 slim', () => {
  assert.deepEqual(stages.map((stage) => stage.name), ['build', 'demo-instance', 'hub']);
  for (const stage of stages) assert.equal(stage.base, 'debian:12-slim', `stage ${stage.name}`);
  assert.equal(stages.at(-1).name, 'hub', 'the hub must be the default (last) stage');
});

test('dockerfile: build stage runs the unit tests', () => {
  const build = stages[0].instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  assert.ok(build.some((run) => run.includes('cmake --build')), 'no cmake build step');
  assert.ok(build.some((run) => run.includes('ctest')), 'no ctest step');
});

test('dockerfile: copied files exist', () => {
  const names = new Set();
  for (const stage of stages) {
    for (const { keyword, args } of stage.instructions) {
      if (keyword === 'ADD') assert.fail(`stage ${stage.name} uses ADD; use COPY`);
      if (keyword !== 'COPY') continue;
      const words = args.split(' ');
      if (words[0].startsWith('--from=')) {
        assert.ok(names.has(words[0].slice(7)), `COPY ${args}: no earlier stage of that name`);
        continue;
      }
      for (const source of words.slice(0, -1)) {
        assert.ok(existsSync(join(repoRoot, source)), `COPY ${args}: ${source} does not exist`);
      }
    }
    names.add(stage.name);
  }
});

test('dockerfile: images run as non-root users', () => {
  for (const name of ['hub', 'demo-instance']) {
    const users = stages.find((s) => s.name === name).instructions.filter((i) => i.keyword === 'USER');
    assert.equal(users.length, 1, `stage ${name}: expected one USER`);
    const uid = Number(users[0].args.split(':')[0]);
    assert.ok(Number.isInteger(uid) && uid > 0, `stage ${name}: USER ${users[0].args} is root`);
  }
});

test('dockerfile: hub exposes its listen ports', () => {
  const exposed = hubStage.instructions
    .filter((i) => i.keyword === 'EXPOSE')
    .flatMap((i) => i.args.split(' ').map(Number));
  const publicPort = listenPort(hubImageEnv.KCHUB_LISTEN);
  const adminPort = listenPort(hubImageEnv.KCHUB_ADMIN_LISTEN);
  assert.deepEqual(exposed.sort(), [publicPort, adminPort].sort());
  assert.match(hubImageEnv.KCHUB_LISTEN, /^0\.0\.0\.0:/);
  assert.match(hubImageEnv.KCHUB_ADMIN_LISTEN, /^0\.0\.0\.0:/, 'the admin listener must bind every address in a container');
});

test('dockerfile: healthcheck probes /healthz', () => {
  const checks = hubStage.instructions.filter((i) => i.keyword === 'HEALTHCHECK');
  assert.equal(checks.length, 1);
  assert.match(checks[0].args, / CMD curl .*http:\/\/127\.0\.0\.1:\$\{KCHUB_ADMIN_LISTEN##\*:\}\/healthz/);
});

test('hub: help lists the listen settings', async () => {
  const { code, stdout } = await runCommand(hubBinary, ['--help']);
  assert.equal(code, 0);
  assert.match(stdout, /KCHUB_LISTEN\s/);
  assert.match(stdout, /KCHUB_ADMIN_LISTEN\s/);
});

test('hub: accepts the image environment', async () => {
  const result = await checkConfig({ ...hubImageEnv, KCHUB_NAMESPACE: 'demo-app-dev' });
  assert.equal(result.code, 0, result.stderr);
});

test('compose: services and references', () => {
  assert.deepEqual(Object.keys(services).sort(),
    ['hub', 'instance-a', 'instance-b', 'keycloak', 'make-secrets', 'redis']);
  const stageNames = stages.map((stage) => stage.name);
  for (const [name, service] of Object.entries(services)) {
    for (const dependency of Object.keys(service.depends_on ?? {})) {
      assert.ok(services[dependency], `${name} depends on unknown service ${dependency}`);
    }
    if (service.build) {
      const context = resolve(deployDir, service.build.context);
      assert.ok(existsSync(join(context, service.build.dockerfile)), `${name}: Dockerfile missing`);
      assert.ok(stageNames.includes(service.build.target), `${name}: no stage ${service.build.target}`);
    }
    for (const volume of service.volumes ?? []) {
      const source = volume.split(':')[0];
      if (source.startsWith('.') || source.startsWith('/')) {
        assert.ok(existsSync(resolve(deployDir, source)), `${name}: ${source} does not exist`);
      } else {
        assert.ok(compose.volumes && source in compose.volumes, `${name}: volume ${source} is not declared`);
      }
    }
  }
});

test('compose: images and versions', () => {
  assert.match(services.keycloak.image, /^quay\.io\/keycloak\/keycloak:26\.\d+\.\d+$/);
  assert.match(services.redis.image, /^redis:7\./);
  const entrypoint = services.keycloak.entrypoint.join(' ');
  assert.match(entrypoint, /kc\.sh start-dev --import-realm/);
  assert.ok(services.keycloak.volumes.includes(
    './keycloak/demo-realm.json:/opt/keycloak/data/import/demo-realm.json:ro'));
});

test('compose: hub ports match its listeners', () => {
  const ports = services.hub.ports.map(composePort);
  assert.deepEqual(ports.map((p) => p.containerPort).sort(), [
    listenPort(hubComposeEnv.KCHUB_LISTEN), listenPort(hubComposeEnv.KCHUB_ADMIN_LISTEN)].sort());
  for (const service of Object.values(services)) {
    for (const port of (service.ports ?? []).map(composePort)) {
      assert.equal(port.hostIp, '127.0.0.1', 'host ports bind loopback only');
    }
  }
  assert.deepEqual(services.keycloak.ports.map(composePort).map((p) => p.containerPort), [8080]);
});

test('compose: hub accepts its environment', async () => {
  const dir = await makeTempDir('compose-env');
  try {
    const result = await checkConfig(await withLocalSecrets(hubComposeEnv, dir));
    assert.equal(result.code, 0, result.stderr);
  } finally {
    await removeTempDir(dir);
  }
});

test('compose: instances use the hub namespace', () => {
  const namespace = hubComposeEnv.KCHUB_NAMESPACE;
  const publicPort = listenPort(hubComposeEnv.KCHUB_LISTEN);
  const instances = ['instance-a', 'instance-b'].map((name) => services[name]);
  for (const instance of instances) {
    assert.equal(instance.environment.KCHUB_NAMESPACE, namespace);
    assert.equal(instance.environment.DEMO_JWKS_URL, `http://hub:${publicPort}/${namespace}/jwks`);
    assert.equal(instance.environment.DEMO_KEYCLOAK_URL, 'http://keycloak:8080');
    assert.equal(instance.build.target, 'demo-instance');
  }
  assert.notEqual(instances[0].environment.KCHUB_INSTANCE, instances[1].environment.KCHUB_INSTANCE);
});

test('compose: redis requires TLS', () => {
  const args = services.redis.command;
  const option = (name) => args[args.indexOf(name) + 1];
  assert.equal(option('--port'), '0', 'the plain-text port must be off');
  const tlsPort = option('--tls-port');
  for (const name of ['--tls-cert-file', '--tls-key-file', '--tls-ca-cert-file', '--aclfile']) {
    assert.match(option(name), /^\/secrets\//, `${name} must come from the secrets volume`);
  }
  for (const env of [hubComposeEnv, services['instance-a'].environment]) {
    const url = new URL(env.KCHUB_REDIS_URL);
    assert.equal(url.protocol, 'rediss:');
    assert.equal(url.hostname, 'redis');
    assert.equal(url.port, tlsPort);
    assert.equal(url.password, '', 'the password comes from a file, never the URL');
    assert.match(env.KCHUB_REDIS_PASSWORD_FILE, /^\/secrets\//);
    assert.equal(env.KCHUB_REDIS_TLS_CA_FILE, option('--tls-ca-cert-file'));
  }
});

test('acl: access strings are exact', () => {
  const users = Object.fromEntries(parseAclTemplate().map((user) => [user.name, user]));
  const namespace = hubComposeEnv.KCHUB_NAMESPACE;
  assert.match(users.default.rules, /^off /, 'the default user must be off');
  for (const env of [hubComposeEnv, services['instance-a'].environment]) {
    const user = users[redisUrlUser(env.KCHUB_REDIS_URL)];
    assert.ok(user, `no ACL user ${redisUrlUser(env.KCHUB_REDIS_URL)}`);
    assert.equal(user.rules, namespaceAccessString(namespace));
    assert.match(user.passwordPlaceholder ?? '', /^@[A-Z]+_PASSWORD_SHA256@$/);
  }
  assert.notEqual(redisUrlUser(hubComposeEnv.KCHUB_REDIS_URL),
    redisUrlUser(services['instance-a'].environment.KCHUB_REDIS_URL));
});

test('compose: secrets are made, not committed', () => {
  assert.equal(services['make-secrets'].network_mode, 'none');
  for (const name of ['hub', 'instance-a', 'instance-b', 'redis', 'keycloak']) {
    assert.ok(services[name].volumes.includes('secrets:/secrets:ro'), `${name}: secrets not read-only`);
  }
  assert.deepEqual(compose.secrets, undefined);
});
