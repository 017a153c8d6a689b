// A faithful stand-in for the parts of the Kubernetes API server that sluice's k8s executor uses,
// for the tests (no real cluster can run here):
//  - batch/v1 Jobs and v1 Pods: create, get, list, watch, delete (propagationPolicy Foreground,
//    Background, Orphan), with real resourceVersions from one counter, 409 AlreadyExists, label
//    selectors, watch bookmarks, timeoutSeconds, and 410 Gone for a resourceVersion older than the
//    last compaction (as an ERROR event in the stream, as the real server sends it);
//  - pod logs, with follow=true streaming as the process writes;
//  - every Job body (and DeleteOptions) validated against the Kubernetes OpenAPI (swagger 2.0)
//    definitions shipped by Debian's golang-k8s-kube-openapi-dev (Kubernetes v1.13), with ajv;
//    unknown fields are refused (fieldValidation=Strict), and so are the name, label and
//    restartPolicy rules the API server checks beyond the schema: 422 Invalid;
//  - each Job's pod runs its container's command as a local process (env from the container,
//    emptyDir volumes as local folders, the termination message read from terminationMessagePath),
//    so exit codes and logs are real; activeDeadlineSeconds and ttlSecondsAfterFinished act;
//  - bearer-token or client-certificate authentication (401 otherwise), optional TLS;
//  - a control endpoint (/_control/...) that makes pods stay Pending, fail image pulls, get
//    OOMKilled or evicted, drops every watch, compacts, answers 429, cuts the answer of a create it made
//    (the client retries: 409 AlreadyExists), and reports every request it served.
//
// Usage: node server.mjs --port-file F [--token T] [--tls-cert C --tls-key K] [--schema swagger.json]
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const SCHEMA = args.schema || '/usr/share/gocode/src/k8s.io/kube-openapi/pkg/schemaconv/testdata/swagger.json';
const TOKEN = args.token || null;
const WORK = fs.mkdtempSync(path.join(args.workdir || os.tmpdir(), 'k8s-server-'));

// ---- the schema ----
const swagger = JSON.parse(fs.readFileSync(SCHEMA, 'utf8'));
function strict(node) {
  if (Array.isArray(node)) return node.map(strict);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = strict(v);
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}
const defs = strict(swagger.definitions);
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
for (const f of ['int32', 'int64', 'double', 'float', 'int-or-string', 'byte']) ajv.addFormat(f, true);
ajv.addSchema({ $id: 'k8s', definitions: defs });
const validateJob = ajv.getSchema('k8s#/definitions/io.k8s.api.batch.v1.Job');
const validateDelete = ajv.getSchema('k8s#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions');
if (!validateJob || !validateDelete) throw new Error(`${SCHEMA}: no batch/v1 Job or DeleteOptions definition`);

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
function labelKeyOk(k) {
  const i = k.lastIndexOf('/');
  const prefix = i >= 0 ? k.slice(0, i) : null, name = i >= 0 ? k.slice(i + 1) : k;
  if (prefix !== null && (prefix.length > 253 || !prefix.split('.').every((p) => DNS1123.test(p)))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}
const labelValueOk = (v) => typeof v === 'string' && v.length <= 63 && (v === '' || LABEL_NAME.test(v));

// What the API server refuses beyond the schema (a subset of ValidateJob).
function semantic(job, ns) {
  const errs = [];
  const m = job.metadata || {};
  if (job.apiVersion !== 'batch/v1') errs.push('apiVersion: must be batch/v1');
  if (job.kind !== 'Job') errs.push('kind: must be Job');
  if (!m.name) errs.push('metadata.name: Required value');
  else if (m.name.length > 63 || !DNS1123.test(m.name)) errs.push(`metadata.name: Invalid value: "${m.name}": a DNS-1123 label of at most 63 characters`);
  if (m.namespace && m.namespace !== ns) errs.push('metadata.namespace: does not match the namespace of the request');
  const checkLabels = (where, l) => {
    for (const [k, v] of Object.entries(l || {})) {
      if (!labelKeyOk(k)) errs.push(`${where}: Invalid value: "${k}": not a valid label key`);
      if (!labelValueOk(v)) errs.push(`${where}: Invalid value: "${v}": not a valid label value`);
    }
  };
  checkLabels('metadata.labels', m.labels);
  const spec = job.spec || {};
  const t = spec.template || {};
  checkLabels('spec.template.metadata.labels', t.metadata && t.metadata.labels);
  const ps = t.spec || {};
  if (!['Never', 'OnFailure'].includes(ps.restartPolicy)) errs.push('spec.template.spec.restartPolicy: Unsupported value: must be "OnFailure" or "Never"');
  if (!ps.containers || ps.containers.length === 0) errs.push('spec.template.spec.containers: Required value');
  const vols = new Set((ps.volumes || []).map((v) => v.name));
  for (const [i, c] of (ps.containers || []).entries()) {
    if (!c.image) errs.push(`spec.template.spec.containers[${i}].image: Required value`);
    if (c.name && !DNS1123.test(c.name)) errs.push(`spec.template.spec.containers[${i}].name: Invalid value`);
    for (const vm of c.volumeMounts || []) if (!vols.has(vm.name)) errs.push(`spec.template.spec.containers[${i}].volumeMounts.name: Not found: "${vm.name}"`);
    for (const e of c.env || []) if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(e.name)) errs.push(`env name ${e.name}: Invalid value`);
  }
  for (const k of ['backoffLimit', 'activeDeadlineSeconds', 'ttlSecondsAfterFinished']) {
    if (spec[k] !== undefined && (!Number.isInteger(spec[k]) || spec[k] < (k === 'activeDeadlineSeconds' ? 1 : 0))) errs.push(`spec.${k}: Invalid value: ${spec[k]}`);
  }
  return errs;
}

// ---- state ----
let rv = 100;
let compactedRV = 0;
const jobs = new Map(); // ns/name -> job
const pods = new Map(); // ns/name -> {pod, proc, log: Buffer[], followers: Set}
const events = []; // {rv, kind: 'jobs'|'pods', ns, type, object}
const watchers = new Set(); // {kind, ns, sel, res, timer}
const control = { pending: new Set(), badImage: new Set(), oom: new Set(), evict: new Set(), throttle: 0, listDelay: 0, lostCreates: 0 };
const requests = []; // {t, method, path, status}
const stats = { created: 0, rejected: [], conflicts: 0, deletes: [], gone410: [], lists: [], watches: 0 };

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const clone = (o) => JSON.parse(JSON.stringify(o));

function selMatch(sel, labels) {
  labels = labels || {};
  return sel.every(({ key, op, value }) => {
    if (op === 'exists') return key in labels;
    if (op === '!') return !(key in labels);
    if (op === '=') return labels[key] === value;
    return labels[key] !== value;
  });
}
function parseSel(s) {
  if (!s) return [];
  return s.split(',').filter(Boolean).map((p) => {
    let m;
    if ((m = p.match(/^([^!=]+)!=(.*)$/))) return { key: m[1].trim(), op: '!=', value: m[2].trim() };
    if ((m = p.match(/^([^=]+)==?(.*)$/))) return { key: m[1].trim(), op: '=', value: m[2].trim() };
    if (p.startsWith('!')) return { key: p.slice(1).trim(), op: '!' };
    return { key: p.trim(), op: 'exists' };
  });
}

function emit(kind, type, obj) {
  if (type !== 'DELETED') obj.metadata.resourceVersion = String(++rv);
  else obj.metadata.resourceVersion = String(++rv);
  const ev = { rv, kind, ns: obj.metadata.namespace, type, object: clone(obj) };
  events.push(ev);
  if (events.length > 20000) events.splice(0, 5000);
  for (const w of watchers) if (w.kind === kind && w.ns === ev.ns && selMatch(w.sel, ev.object.metadata.labels)) send(w, ev);
}
function send(w, ev) {
  w.res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
}

function status(res, code, reason, message, details) {
  const body = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) body.details = details;
  reply(res, code, body);
}
function reply(res, code, body) {
  res.statusCode = code;
  res._k8sStatus = code;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}

// ---- pods: local processes ----
function setPod(p, fn) {
  fn(p.pod);
  emit('pods', 'MODIFIED', p.pod);
}

function jobCondition(job, type, reason, message) {
  job.status = job.status || {};
  job.status.conditions = [{ type, status: 'True', reason, message, lastProbeTime: now(), lastTransitionTime: now() }];
  job.status.active = 0;
  if (type === 'Complete') { job.status.succeeded = 1; job.status.completionTime = now(); } else job.status.failed = 1;
  emit('jobs', 'MODIFIED', job);
  const ttl = job.spec.ttlSecondsAfterFinished;
  if (ttl !== undefined) setTimeout(() => deleteJob(job.metadata.namespace, job.metadata.name, 'Background'), ttl * 1000).unref();
}

function createPod(job) {
  const ns = job.metadata.namespace, tmpl = job.spec.template;
  const name = `${job.metadata.name}-${crypto.randomBytes(3).toString('hex').slice(0, 5)}`;
  const pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name, namespace: ns, uid: crypto.randomUUID(), creationTimestamp: now(),
      labels: { ...(tmpl.metadata && tmpl.metadata.labels), 'job-name': job.metadata.name, 'controller-uid': job.metadata.uid },
      annotations: { ...(tmpl.metadata && tmpl.metadata.annotations) },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid, controller: true }],
    },
    spec: clone(tmpl.spec),
    status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }],
      containerStatuses: tmpl.spec.containers.map((c) => ({ name: c.name, image: c.image, ready: false, restartCount: 0,
        state: { waiting: { reason: 'ContainerCreating' } } })) },
  };
  const p = { pod, proc: null, log: [], followers: new Set(), job };
  pods.set(`${ns}/${name}`, p);
  emit('pods', 'ADDED', pod);
  const c = tmpl.spec.containers[0];
  if (control.badImage.has(c.image)) {
    let n = 0;
    const flip = () => {
      if (!pods.has(`${ns}/${name}`)) return;
      const reason = n++ % 2 ? 'ImagePullBackOff' : 'ErrImagePull';
      setPod(p, (x) => { x.status.containerStatuses[0].state = { waiting: { reason, message: `Back-off pulling image "${c.image}"` } }; });
      p.flip = setTimeout(flip, 1000);
    };
    p.flip = setTimeout(flip, 100);
    return;
  }
  if (control.pending.has(c.image)) {
    setPod(p, (x) => {
      x.status.conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient cpu.' }];
      delete x.status.containerStatuses;
    });
    return;
  }
  setTimeout(() => startContainer(p), 30);
}

function startContainer(p) {
  const pod = p.pod, c = pod.spec.containers[0];
  if (!pods.has(`${pod.metadata.namespace}/${pod.metadata.name}`)) return;
  const dir = fs.mkdtempSync(path.join(WORK, 'pod-'));
  const mounts = {};
  for (const vm of c.volumeMounts || []) {
    const local = path.join(dir, 'vol-' + vm.name);
    fs.mkdirSync(local, { recursive: true });
    mounts[vm.mountPath] = local;
  }
  const mapPath = (v) => {
    for (const [mp, local] of Object.entries(mounts)) if (v === mp || v.startsWith(mp + '/')) return local + v.slice(mp.length);
    return v;
  };
  const termPath = mapPath(c.terminationMessagePath || '/dev/termination-log');
  const env = { PATH: process.env.PATH, HOME: dir, HOSTNAME: pod.metadata.name };
  for (const e of c.env || []) env[e.name] = mapPath(e.value || '');
  const argv = [...(c.command || []), ...(c.args || [])].map(mapPath);
  const started = now();
  const cwd = c.workingDir && fs.existsSync(c.workingDir) ? c.workingDir : dir;
  const proc = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  p.proc = proc;
  const onData = (b) => { p.log.push(b); for (const f of p.followers) f.write(b); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  let spawnErr = null;
  proc.on('error', (e) => { spawnErr = e; });
  setPod(p, (x) => {
    x.status.phase = 'Running';
    x.status.startTime = started;
    x.status.containerStatuses[0] = { ...x.status.containerStatuses[0], ready: true, started: true, state: { running: { startedAt: started } } };
  });
  const job = p.job;
  if (job.spec.activeDeadlineSeconds) {
    p.deadline = setTimeout(() => { p.deadlineHit = true; try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } },
      job.spec.activeDeadlineSeconds * 1000);
  }
  if (control.oom.has(c.image)) p.oomTimer = setTimeout(() => { p.oomed = true; try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 300);
  if (control.evict.has(c.image)) p.oomTimer = setTimeout(() => { p.evicted = true; try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 300);
  proc.on('close', (code, signal) => {
    clearTimeout(p.deadline);
    clearTimeout(p.oomTimer);
    if (!pods.has(`${pod.metadata.namespace}/${pod.metadata.name}`)) return;
    let msg = '';
    try { msg = fs.readFileSync(termPath).subarray(0, 4096).toString(); } catch { /* none */ }
    if (spawnErr) { onData(Buffer.from(`exec: ${spawnErr.message}\n`)); code = 128; }
    const exitCode = code !== null ? code : 128 + (os.constants.signals[signal] || 9);
    const reason = p.oomed ? 'OOMKilled' : p.deadlineHit ? 'DeadlineExceeded' : exitCode === 0 ? 'Completed' : 'Error';
    for (const f of p.followers) f.end();
    p.followers.clear();
    setPod(p, (x) => {
      x.status.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
      if (p.deadlineHit) { x.status.reason = 'DeadlineExceeded'; x.status.message = 'Pod was active on the node longer than the specified deadline'; }
      if (p.evicted) { x.status.reason = 'Evicted'; x.status.message = 'The node was low on resource: memory.'; }
      const term = { exitCode, reason, startedAt: started, finishedAt: now(), containerID: `local://${proc.pid}` };
      if (msg) term.message = msg;
      x.status.containerStatuses[0] = { ...x.status.containerStatuses[0], ready: false, started: false, state: { terminated: term } };
    });
    if (jobs.get(`${job.metadata.namespace}/${job.metadata.name}`) === job) {
      if (p.deadlineHit) jobCondition(job, 'Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline');
      else if (exitCode === 0) jobCondition(job, 'Complete', undefined, undefined);
      else jobCondition(job, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    }
  });
}

function deletePod(key) {
  const p = pods.get(key);
  if (!p) return;
  pods.delete(key);
  clearTimeout(p.flip);
  clearTimeout(p.deadline);
  clearTimeout(p.oomTimer);
  if (p.proc && p.proc.exitCode === null && p.proc.signalCode === null) {
    try { process.kill(-p.proc.pid, 'SIGTERM'); } catch { /* gone */ }
    const proc = p.proc;
    setTimeout(() => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 1000).unref();
  }
  for (const f of p.followers) f.end();
  p.pod.metadata.deletionTimestamp = now();
  emit('pods', 'DELETED', p.pod);
}

function deleteJob(ns, name, policy) {
  const key = `${ns}/${name}`, job = jobs.get(key);
  if (!job) return null;
  const owned = [...pods.entries()].filter(([, p]) => p.job === job).map(([k]) => k);
  if (policy === 'Foreground' && owned.length) {
    job.metadata.deletionTimestamp = now();
    job.metadata.finalizers = ['foregroundDeletion'];
    emit('jobs', 'MODIFIED', job);
  }
  if (policy !== 'Orphan') for (const k of owned) deletePod(k);
  jobs.delete(key);
  emit('jobs', 'DELETED', job);
  return job;
}

// ---- HTTP ----
function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
}

function list(kind, ns, q, res) {
  const sel = parseSel(q.get('labelSelector'));
  const src = kind === 'jobs' ? [...jobs.values()] : [...pods.values()].map((p) => p.pod);
  const items = src.filter((o) => o.metadata.namespace === ns && selMatch(sel, o.metadata.labels)).map(clone);
  stats.lists.push({ t: Date.now(), kind, ns });
  const body = { kind: kind === 'jobs' ? 'JobList' : 'PodList', apiVersion: kind === 'jobs' ? 'batch/v1' : 'v1',
    metadata: { resourceVersion: String(rv) }, items };
  if (control.listDelay) setTimeout(() => reply(res, 200, body), control.listDelay);
  else reply(res, 200, body);
}

function watch(kind, ns, q, req, res) {
  const sel = parseSel(q.get('labelSelector'));
  const from = Number(q.get('resourceVersion') || rv);
  res.statusCode = 200;
  res._k8sStatus = 200;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Transfer-Encoding', 'chunked');
  stats.watches++;
  if (from < compactedRV) {
    stats.gone410.push({ t: Date.now(), kind, ns, from });
    res.write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: `too old resource version: ${from} (${compactedRV})`, reason: 'Expired', code: 410 } }) + '\n');
    res.end();
    return;
  }
  const w = { kind, ns, sel, res, req };
  for (const ev of events) if (ev.rv > from && ev.kind === kind && ev.ns === ns && selMatch(sel, ev.object.metadata.labels)) send(w, ev);
  watchers.add(w);
  const timeout = Math.min(Number(q.get('timeoutSeconds') || 1800), 1800);
  w.timer = setTimeout(() => { watchers.delete(w); res.end(); }, timeout * 1000);
  if (q.get('allowWatchBookmarks') === 'true') {
    w.bookmark = setInterval(() => {
      res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: kind === 'jobs' ? 'Job' : 'Pod',
        apiVersion: kind === 'jobs' ? 'batch/v1' : 'v1', metadata: { resourceVersion: String(rv) } } }) + '\n');
    }, 2000);
  }
  const done = () => { watchers.delete(w); clearTimeout(w.timer); clearInterval(w.bookmark); };
  res.on('close', done);
}

function podLog(ns, name, q, res) {
  const p = pods.get(`${ns}/${name}`);
  if (!p) return status(res, 404, 'NotFound', `pods "${name}" not found`);
  const cname = q.get('container') || p.pod.spec.containers[0].name;
  if (!p.pod.spec.containers.some((c) => c.name === cname)) return status(res, 400, 'BadRequest', `container ${cname} is not valid for pod ${name}`);
  if (!p.proc) {
    const w = p.pod.status.containerStatuses && p.pod.status.containerStatuses[0].state.waiting;
    return status(res, 400, 'BadRequest', `container "${cname}" in pod "${name}" is waiting to start: ${w ? w.reason : 'ContainerCreating'}`);
  }
  res.statusCode = 200;
  res._k8sStatus = 200;
  res.setHeader('Content-Type', 'text/plain');
  for (const b of p.log) res.write(b);
  const running = p.pod.status.phase === 'Running';
  if (q.get('follow') === 'true' && running) {
    p.followers.add(res);
    res.on('close', () => p.followers.delete(res));
  } else res.end();
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const q = url.searchParams, parts = url.pathname.split('/').filter(Boolean);
  if (parts[0] === '_control') return controlReq(req, res, parts.slice(1), await readBody(req));
  const entry = { t: Date.now(), method: req.method, path: url.pathname + url.search };
  requests.push(entry);
  res.on('finish', () => { entry.status = res._k8sStatus; });
  // A client certificate signed by --client-ca authenticates as a bearer token does.
  const byCert = req.socket.authorized === true && req.socket.getPeerCertificate && req.socket.getPeerCertificate().subject;
  entry.user = byCert ? `cert:${req.socket.getPeerCertificate().subject.CN}` : req.headers.authorization ? 'token' : 'anonymous';
  if (TOKEN && !byCert && req.headers.authorization !== `Bearer ${TOKEN}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
  if (control.throttle > 0) {
    control.throttle--;
    res.setHeader('Retry-After', '1');
    return status(res, 429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later');
  }
  // discovery, enough for kubectl
  if (url.pathname === '/api') return reply(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
  if (url.pathname === '/apis') return reply(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'batch', versions: [{ groupVersion: 'batch/v1', version: 'v1' }], preferredVersion: { groupVersion: 'batch/v1', version: 'v1' } }] });
  if (url.pathname === '/api/v1') return reply(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list', 'watch'] }, { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] }] });
  if (url.pathname === '/apis/batch/v1') return reply(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'batch/v1', resources: [{ name: 'jobs', singularName: 'job', namespaced: true, kind: 'Job', verbs: ['create', 'delete', 'get', 'list', 'watch'] }] });
  if (url.pathname === '/version') return reply(res, 200, { major: '1', minor: '13', gitVersion: 'v1.13.0-sluice-test' });
  let m;
  if ((m = url.pathname.match(/^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs(?:\/([^/]+))?$/))) {
    const [, ns, name] = m;
    if (!name && req.method === 'POST') return createJob(ns, await readBody(req), req, res);
    if (!name && req.method === 'GET') return q.get('watch') === 'true' || q.get('watch') === '1' ? watch('jobs', ns, q, req, res) : list('jobs', ns, q, res);
    if (name && req.method === 'GET') {
      const j = jobs.get(`${ns}/${name}`);
      return j ? reply(res, 200, j) : status(res, 404, 'NotFound', `jobs.batch "${name}" not found`, { name, group: 'batch', kind: 'jobs' });
    }
    if (name && req.method === 'DELETE') {
      const text = await readBody(req);
      let opts = {};
      if (text) {
        try { opts = JSON.parse(text); } catch { return status(res, 400, 'BadRequest', 'the body is not JSON'); }
        if (!validateDelete(opts)) {
          stats.rejected.push({ body: opts, errors: validateDelete.errors });
          return status(res, 422, 'Invalid', `DeleteOptions: ${ajv.errorsText(validateDelete.errors)}`);
        }
      }
      const policy = opts.propagationPolicy || q.get('propagationPolicy') || 'Background';
      stats.deletes.push({ t: Date.now(), ns, name, policy });
      const j = deleteJob(ns, name, policy);
      return j ? reply(res, 200, j) : status(res, 404, 'NotFound', `jobs.batch "${name}" not found`, { name, group: 'batch', kind: 'jobs' });
    }
    return status(res, 405, 'MethodNotAllowed', 'method not allowed');
  }
  if ((m = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+)(\/log)?)?$/))) {
    const [, ns, name, log] = m;
    if (req.method !== 'GET') return status(res, 405, 'MethodNotAllowed', 'method not allowed');
    if (!name) return q.get('watch') === 'true' || q.get('watch') === '1' ? watch('pods', ns, q, req, res) : list('pods', ns, q, res);
    if (log) return podLog(ns, name, q, res);
    const p = pods.get(`${ns}/${name}`);
    return p ? reply(res, 200, p.pod) : status(res, 404, 'NotFound', `pods "${name}" not found`);
  }
  return status(res, 404, 'NotFound', 'the server could not find the requested resource');
}

function createJob(ns, text, req, res) {
  let job;
  try { job = JSON.parse(text); } catch { return status(res, 400, 'BadRequest', 'the body is not JSON'); }
  const valid = validateJob(job);
  const errs = valid ? semantic(job, ns) : validateJob.errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`);
  if (errs.length) {
    stats.rejected.push({ body: job, errors: errs });
    return status(res, 422, 'Invalid', `Job.batch "${job.metadata && job.metadata.name}" is invalid: ${errs.join('; ')}`);
  }
  const key = `${ns}/${job.metadata.name}`;
  if (jobs.has(key)) {
    stats.conflicts++;
    return status(res, 409, 'AlreadyExists', `jobs.batch "${job.metadata.name}" already exists`, { name: job.metadata.name, group: 'batch', kind: 'jobs' });
  }
  job.metadata.namespace = ns;
  job.metadata.uid = crypto.randomUUID();
  job.metadata.creationTimestamp = now();
  job.status = { startTime: now(), active: 1 };
  jobs.set(key, job);
  stats.created++;
  emit('jobs', 'ADDED', job);
  if (control.lostCreates > 0) { // created, but the answer is lost: the client must not make a second Job
    control.lostCreates--;
    req.socket.destroy();
  } else reply(res, 201, job);
  setTimeout(() => { if (jobs.get(key) === job) createPod(job); }, 20);
}

function controlReq(req, res, parts, text) {
  const body = text ? JSON.parse(text) : {};
  switch (parts[0]) {
    case 'images': // {"pending": [...], "bad": [...], "oom": [...]}
      for (const [k, set] of [['pending', control.pending], ['bad', control.badImage], ['oom', control.oom], ['evict', control.evict]]) for (const i of body[k] || []) set.add(i);
      return reply(res, 200, {});
    case 'drop-watches': {
      const n = watchers.size;
      for (const w of [...watchers]) { watchers.delete(w); w.req.socket.destroy(); }
      return reply(res, 200, { dropped: n });
    }
    case 'compact': // later watches from an older resourceVersion get 410 Gone
      compactedRV = rv + 1;
      if (body.drop) for (const w of [...watchers]) { watchers.delete(w); w.req.socket.destroy(); }
      return reply(res, 200, { compactedRV, t: Date.now() });
    case 'lose-creates': // the next N creates succeed but their connection is cut before the answer
      control.lostCreates = body.count || 0;
      return reply(res, 200, {});
    case 'throttle':
      control.throttle = body.count || 0;
      return reply(res, 200, {});
    case 'stats':
      return reply(res, 200, { ...stats, requests, jobs: [...jobs.values()], pods: [...pods.values()].map((p) => p.pod), rv });
    case 'reset-stats':
      requests.length = 0;
      stats.rejected = []; stats.deletes = []; stats.gone410 = []; stats.lists = []; stats.created = 0; stats.conflicts = 0; stats.watches = 0;
      return reply(res, 200, {});
    default:
      return status(res, 404, 'NotFound', 'no such control');
  }
}

const handler = (req, res) => handle(req, res).catch((e) => { try { status(res, 500, 'InternalError', String(e.stack || e)); } catch { /* closed */ } });
const server = args['tls-cert']
  ? https.createServer({ cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key']),
    ...(args['client-ca'] ? { ca: fs.readFileSync(args['client-ca']), requestCert: true, rejectUnauthorized: false } : {}) }, handler)
  : http.createServer(handler);
server.keepAliveTimeout = 60000;
server.listen(Number(args.port || 0), '127.0.0.1', () => {
  const port = server.address().port;
  if (args['port-file']) fs.writeFileSync(args['port-file'], String(port));
  else console.log(port);
});
const stop = () => {
  for (const p of pods.values()) if (p.proc) try { process.kill(-p.proc.pid, 'SIGKILL'); } catch { /* gone */ }
  fs.rmSync(WORK, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
