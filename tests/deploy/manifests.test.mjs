// Static checks of the Keycloak realm and the Kubernetes manifests: the realm's client points at
// the hub as compose runs it, and the Deployment, Service, PodDisruptionBudget, ConfigMap and
// Secret fit together, use the hub's real ports, and keep the pods locked down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { cleanEnv, makeTempDir, removeTempDir, runCommand } from '../integration/lib/proc.mjs';
import {
  deployDir, hubBinary, listenPort, loadCompose, parseDockerfile, parseYaml, parseYamlDocuments,
  stageEnv,
} from './lib.mjs';

const kubernetesDir = join(deployDir, 'kubernetes');
const hubImageEnv = stageEnv(parseDockerfile().find((stage) => stage.name === 'hub'));
const compose = loadCompose();
const hubComposeEnv = { ...hubImageEnv, ...compose.services.hub.environment };
const realm = JSON.parse(readFileSync(join(deployDir, 'keycloak', 'demo-realm.json'), 'utf8'));

function loadManifests() {
  const kustomization = parseYaml(readFileSync(join(kubernetesDir, 'kustomization.yaml'), 'utf8'));
  const byKind = {};
  for (const file of kustomization.resources) {
    assert.ok(existsSync(join(kubernetesDir, file)), `kustomization lists missing ${file}`);
    for (const doc of parseYamlDocuments(readFileSync(join(kubernetesDir, file), 'utf8'))) {
      assert.ok(!byKind[doc.kind], `two manifests of kind ${doc.kind}`);
      byKind[doc.kind] = doc;
    }
  }
  return byKind;
}

const manifests = loadManifests();
const deployment = manifests.Deployment;
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const containerPort = (name) => container.ports.find((port) => port.name === name)?.containerPort;

test('realm: client uses the hub JWKS', () => {
  const [client] = realm.clients;
  const namespace = hubComposeEnv.KCHUB_NAMESPACE;
  const port = listenPort(hubComposeEnv.KCHUB_LISTEN);
  assert.equal(client.clientAuthenticatorType, 'client-jwt');
  assert.equal(client.publicClient, false);
  assert.equal(client.serviceAccountsEnabled, true, 'client_credentials needs a service account');
  assert.equal(client.attributes['use.jwks.url'], 'true');
  assert.equal(client.attributes['jwks.url'], `http://hub:${port}/${namespace}/jwks`);
  assert.ok(compose.services.hub, 'the JWKS URL host must be the compose service "hub"');
});

test('realm: back-channel logout at hub', () => {
  const [client] = realm.clients;
  const namespace = hubComposeEnv.KCHUB_NAMESPACE;
  const port = listenPort(hubComposeEnv.KCHUB_LISTEN);
  assert.equal(client.attributes['backchannel.logout.url'],
    `http://hub:${port}/${namespace}/backchannel-logout`);
  assert.equal(client.attributes['backchannel.logout.session.required'], 'true');
  assert.equal(client.frontchannelLogout, false);
});

test('realm: hub expects its issuer and client', () => {
  const keycloak = compose.services.keycloak.environment;
  assert.equal(hubComposeEnv.KCHUB_LOGOUT_ISSUER, `${keycloak.KC_HOSTNAME}/realms/${realm.realm}`);
  assert.equal(hubComposeEnv.KCHUB_LOGOUT_CLIENT_ID, realm.clients[0].clientId);
  assert.equal(hubComposeEnv.KCHUB_LOGOUT_JWKS_URL,
    `http://keycloak:8080/realms/${realm.realm}/protocol/openid-connect/certs`);
  for (const name of ['instance-a', 'instance-b']) {
    const env = compose.services[name].environment;
    assert.equal(env.DEMO_REALM, realm.realm);
    assert.equal(env.DEMO_CLIENT_ID, realm.clients[0].clientId);
  }
});

test('realm: test user without credentials', () => {
  assert.equal(realm.users.length, 1);
  const [user] = realm.users;
  assert.equal(user.username, 'demo-user');
  assert.equal(user.enabled, true);
  assert.equal(user.credentials, undefined, 'deploy/compose-test.sh sets a fresh password');
  assert.equal(realm.clients[0].secret, undefined);
});

test('kubernetes: the expected manifests', () => {
  assert.deepEqual(Object.keys(manifests).sort(),
    ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
  assert.equal(deployment.apiVersion, 'apps/v1');
  assert.equal(manifests.PodDisruptionBudget.apiVersion, 'policy/v1');
});

test('kubernetes: two replicas, matching labels', () => {
  assert.equal(deployment.spec.replicas, 2);
  const labels = deployment.spec.template.metadata.labels;
  for (const [name, selector] of [
    ['Deployment', deployment.spec.selector.matchLabels],
    ['Service', manifests.Service.spec.selector],
    ['PodDisruptionBudget', manifests.PodDisruptionBudget.spec.selector.matchLabels],
  ]) {
    for (const [key, value] of Object.entries(selector)) {
      assert.equal(labels[key], value, `${name} selector ${key} does not match the pods`);
    }
  }
  assert.equal(manifests.PodDisruptionBudget.spec.minAvailable, 1);
});

test('kubernetes: ports are the hub listeners', () => {
  assert.equal(containerPort('http'), listenPort(hubImageEnv.KCHUB_LISTEN));
  assert.equal(containerPort('admin'), listenPort(hubImageEnv.KCHUB_ADMIN_LISTEN));
  assert.ok(!(container.env ?? []).some((e) => /^KCHUB_(ADMIN_)?LISTEN$/.test(e.name)),
    'the listen addresses come from the image');
});

test('kubernetes: probes on the admin port', () => {
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  for (const probe of [container.livenessProbe, container.readinessProbe]) {
    assert.equal(probe.httpGet.port, 'admin');
  }
});

test('kubernetes: service has the public port only', () => {
  const ports = manifests.Service.spec.ports;
  assert.equal(ports.length, 1);
  assert.ok([ 'http', containerPort('http')].includes(ports[0].targetPort));
});

test('kubernetes: pod security settings', () => {
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.equal(pod.automountServiceAccountToken, false);
  const security = container.securityContext;
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.equal(security.runAsNonRoot, true);
  assert.deepEqual(security.capabilities.drop, ['ALL']);
  assert.equal(security.capabilities.add, undefined);
  for (const kind of ['requests', 'limits']) {
    assert.ok(container.resources[kind].cpu, `resources.${kind}.cpu missing`);
    assert.ok(container.resources[kind].memory, `resources.${kind}.memory missing`);
  }
});

/** The path at which the pod mounts the volume that holds `key` of the named source. */
function mountedPath(sourceKind, sourceName, key) {
  const volume = pod.volumes.find((v) => (sourceKind === 'configMap'
    ? v.configMap?.name === sourceName : v.secret?.secretName === sourceName));
  assert.ok(volume, `no volume for ${sourceKind} ${sourceName}`);
  const mount = container.volumeMounts.find((m) => m.name === volume.name);
  assert.ok(mount, `volume ${volume.name} is not mounted`);
  assert.equal(mount.readOnly, true);
  return posix.join(mount.mountPath, key);
}

test('kubernetes: config and secret are mounted', () => {
  const config = manifests.ConfigMap;
  const secret = manifests.Secret;
  const hubJson = JSON.parse(config.data['hub.json']);
  const configIndex = container.args.indexOf('--config');
  assert.equal(container.args[configIndex + 1],
    mountedPath('configMap', config.metadata.name, 'hub.json'));
  assert.equal(hubJson.redis.password_file,
    mountedPath('secret', secret.metadata.name, 'redis-password'));
  assert.ok('redis-password' in secret.stringData);
  assert.match(hubJson.redis.url, /^rediss:\/\/[^:@]+@/, 'TLS, and no password in the URL');
});

test('kubernetes: secret holds no value', () => {
  for (const [key, value] of Object.entries(manifests.Secret.stringData ?? {})) {
    assert.equal(value, '', `Secret ${key} must not be committed with a value`);
  }
  assert.equal(manifests.Secret.data, undefined);
});

test('kubernetes: hub accepts the config', async () => {
  const dir = await makeTempDir('k8s-config');
  try {
    const configPath = join(dir, 'hub.json');
    await writeFile(configPath, manifests.ConfigMap.data['hub.json']);
    const passwordPath = join(dir, 'redis-password');
    await writeFile(passwordPath, 'placeholder\n', { mode: 0o600 });
    const env = cleanEnv({ ...hubImageEnv, KCHUB_REDIS_PASSWORD_FILE: passwordPath });
    const result = await runCommand(hubBinary, ['--config', configPath, '--check-config'], { env });
    assert.equal(result.code, 0, result.stderr);
  } finally {
    await removeTempDir(dir);
  }
});
