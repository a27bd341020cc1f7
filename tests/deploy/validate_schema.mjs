#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Validates every object in deploy/ against the Kubernetes API's JSON schema, with
// kubernetes-models (the API's OpenAPI definitions compiled into validators, one class per kind),
// and strictly: a field the schema does not define is an error, as `kubectl apply` makes it (its
// default --validate=strict). Installed by scripts/setup.sh (npm ci --prefix tests/deploy).
// kubernetes-models also holds API versions Kubernetes no longer serves (extensions/v1beta1):
// which versions deploy/ may use is validate_manifests.py's check, with the cross-checks.
//
//   validate_schema.mjs DEPLOY_DIR              exit 0 when every object is valid, 1 with one line per problem
//   validate_schema.mjs --self-test DEPLOY_DIR  breaks the manifests one way at a time; each must be caught
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

let YAML;
try {
  YAML = (await import("yaml")).default;
  await import("kubernetes-models/v1/Pod");
} catch (e) {
  console.log(`FAIL: the schema validator is not installed (tests/deploy/node_modules: ${e.code ?? e.message}); ` +
              "run scripts/setup.sh, or npm ci --prefix tests/deploy");
  process.exit(1);
}

function yamlFiles(dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return name.endsWith(".yaml") || name.endsWith(".yml") ? [path] : [];
  });
}

// [{where, object}] of every document, and the YAML errors as problems.
function load(deployDir) {
  const objects = [];
  const problems = [];
  for (const path of yamlFiles(deployDir)) {
    const file = relative(deployDir, path);
    YAML.parseAllDocuments(readFileSync(path, "utf8")).forEach((doc, i) => {
      for (const e of doc.errors) problems.push(`${file}[${i}]: does not parse: ${e.message.split("\n")[0]}`);
      if (doc.errors.length === 0 && doc.contents !== null) objects.push({ where: `${file}[${i}]`, object: doc.toJS() });
    });
  }
  return { objects, problems };
}

// Runs validate(data) over a proxy that records which keys of each object the schema's validator
// reads: it reads every property its schema defines (and every key of a map), so a key it never
// touched is a field the API does not know.
function unknownFields(validate, data) {
  const read = new Map();
  const paths = new Map();
  const proxies = new Map();
  const note = (target, key) => { if (typeof key === "string") read.get(target).add(key); };
  const wrap = (value, path) => {
    if (value === null || typeof value !== "object") return value;
    if (proxies.has(value)) return proxies.get(value);
    read.set(value, new Set());
    paths.set(value, path);
    const proxy = new Proxy(value, {
      get(t, k, r) {
        note(t, k);
        const v = Reflect.get(t, k, r);
        return typeof k === "string" && Object.hasOwn(t, k) ? wrap(v, `${path}.${k}`) : v;
      },
      getOwnPropertyDescriptor(t, k) { note(t, k); return Reflect.getOwnPropertyDescriptor(t, k); },
      has(t, k) { note(t, k); return Reflect.has(t, k); },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  validate(wrap(data, ""));
  const unknown = [];
  for (const [target, keys] of read)
    if (!Array.isArray(target)) for (const k of Object.keys(target)) if (!keys.has(k)) unknown.push(`${paths.get(target)}.${k}`.slice(1));
  return unknown;
}

async function modelOf(apiVersion, kind) {
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion ?? "") || !/^[A-Z][A-Za-z0-9]*$/.test(kind ?? ""))
    return null;
  try {
    return (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind] ?? null;
  } catch {
    return null;
  }
}

async function check(objects) {
  const problems = [];
  for (const { where, object } of objects) {
    if (object === null || typeof object !== "object" || Array.isArray(object)) {
      problems.push(`${where}: not a mapping`);
      continue;
    }
    const Model = await modelOf(object.apiVersion, object.kind);
    if (Model === null) {
      problems.push(`${where}: no Kubernetes schema for apiVersion ${object.apiVersion} kind ${object.kind}`);
      continue;
    }
    const name = `${where} ${object.kind}/${object.metadata?.name}`;
    let unknown = [];
    try {
      unknown = unknownFields((d) => Model.prototype.validate.call(d), object);
    } catch (e) {
      problems.push(`${name}: ${e.message}`);
    }
    for (const field of unknown) problems.push(`${name}: unknown field "${field}"`);
  }
  return problems;
}

async function selfTest(deployDir) {
  const { objects, problems } = load(deployDir);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  const find = (o, kind) => o.find((x) => x.object.kind === kind).object;
  const exporter = (o) => find(o, "DaemonSet").spec.template.spec.containers[0];
  const mutations = {
    "containerPort must be integer": (o) => { exporter(o).ports[0].containerPort = "9400"; },
    'unknown field "spec.template.spec.containers.0.volumeMount"': (o) => {
      exporter(o).volumeMount = exporter(o).volumeMounts;
      delete exporter(o).volumeMounts;
    },
    'unknown field "spec.selector.matchLabel"': (o) => {
      const selector = find(o, "DaemonSet").spec.selector;
      selector.matchLabel = selector.matchLabels;
      delete selector.matchLabels;
    },
    "hostPath/type must be equal to one of the allowed values": (o) => { find(o, "DaemonSet").spec.template.spec.volumes[0].hostPath.type = "Directory0rCreate"; },
    "containers/0 must have required property name": (o) => { delete exporter(o).name; },
    "spec must have required property containers": (o) => { delete find(o, "Pod").spec.containers; },
    'must match format "quantity"': (o) => { exporter(o).resources.limits.memory = "64MB!"; },
    "no Kubernetes schema for apiVersion apps/v1 kind Daemonset": (o) => { find(o, "DaemonSet").kind = "Daemonset"; },
    "spec/ports/0/port must be integer": (o) => { find(o, "Service").spec.ports[0].port = "metrics"; },
  };
  let failed = 0;
  for (const [expected, mutate] of Object.entries(mutations)) {
    const broken = structuredClone(objects);
    mutate(broken);
    const found = await check(broken);
    if (!found.some((p) => p.includes(expected))) {
      console.log(`self-test FAIL: breaking it so should report '${expected}', got ${JSON.stringify(found)}`);
      failed++;
    }
  }
  // A duplicate key is a YAML error, not a silent override.
  if (YAML.parseAllDocuments("a: 1\na: 2\n")[0].errors.length === 0) {
    console.log("self-test FAIL: a duplicate key parsed");
    failed++;
  }
  console.log(`self-test: ${Object.keys(mutations).length + 1 - failed} passed, ${failed} failed`);
  return failed === 0;
}

const args = process.argv.slice(2);
if (args.length === 2 && args[0] === "--self-test") {
  process.exit((await selfTest(args[1])) ? 0 : 1);
}
if (args.length !== 1) {
  console.log("usage: validate_schema.mjs [--self-test] DEPLOY_DIR");
  process.exit(2);
}
const { objects, problems } = load(args[0]);
problems.push(...(await check(objects)));
for (const p of problems) console.log(`FAIL: ${p}`);
if (problems.length === 0) console.log(`OK: ${objects.length} objects valid against the Kubernetes API schema, unknown fields refused`);
process.exit(problems.length === 0 ? 0 : 1);
