// The event stream shared by every tab of the app (a SharedWorker). Browsers give a host at most
// six HTTP/1.1 connections, and each EventSource holds one for good: with one stream per tab the
// seventh tab would wait forever. Here one /api/v1/events stream serves all tabs; each tab says
// which DAG it watches (or all) and gets only those events.
//
// Tab -> worker: {type: 'start', filter} | {type: 'filter', filter} | {type: 'stop'}
// Worker -> tab: {type: 'status', status} | {type: 'ti' | 'run', event} | {type: 'resync'} | {type: 'refused'}

/// <reference lib="webworker" />
export {};
declare const self: SharedWorkerGlobalScope;

type Status = 'connecting' | 'open' | 'down';
interface Client {
  port: MessagePort;
  filter: string | null;
  started: boolean;
}

const clients = new Set<Client>();
let es: EventSource | null = null;
let status: Status = 'connecting';
let lastId = '';
let wasDown = false;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let retryDelay = 1000;

function wanted(): boolean {
  for (const c of clients) if (c.started) return true;
  return false;
}

function post(c: Client, msg: unknown): void {
  try {
    c.port.postMessage(msg);
  } catch {
    clients.delete(c);
  }
}

function broadcast(msg: unknown): void {
  for (const c of clients) if (c.started) post(c, msg);
}

function setStatus(s: Status): void {
  status = s;
  broadcast({ type: 'status', status: s });
}

function dispatch(type: 'ti' | 'run', ev: MessageEvent): void {
  if (ev.lastEventId) lastId = ev.lastEventId;
  let e: { dag_id?: string };
  try {
    e = JSON.parse(ev.data);
  } catch {
    return;
  }
  for (const c of clients) if (c.started && (c.filter === null || c.filter === e.dag_id)) post(c, { type, event: e });
}

function close(): void {
  clearTimeout(retryTimer);
  if (es) {
    es.close();
    es = null;
  }
}

function open(): void {
  close();
  if (!wanted()) return;
  const src = new EventSource('/api/v1/events' + (lastId ? `?last_event_id=${encodeURIComponent(lastId)}` : ''), { withCredentials: true });
  es = src;
  src.onopen = () => {
    if (es !== src) return;
    retryDelay = 1000;
    setStatus('open');
    if (wasDown) {
      wasDown = false;
      broadcast({ type: 'resync' });
    }
  };
  src.onerror = () => {
    if (es !== src) return;
    wasDown = true;
    setStatus('down');
    if (src.readyState === EventSource.CLOSED) {
      es = null;
      broadcast({ type: 'refused' });
      clearTimeout(retryTimer);
      retryTimer = setTimeout(open, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    }
  };
  src.addEventListener('task_instance', (ev) => dispatch('ti', ev as MessageEvent));
  src.addEventListener('dag_run', (ev) => dispatch('run', ev as MessageEvent));
}

self.onconnect = (e: MessageEvent) => {
  const c: Client = { port: e.ports[0], filter: null, started: false };
  clients.add(c);
  c.port.onmessage = (m: MessageEvent) => {
    const msg = m.data as { type: string; filter?: string | null };
    if (msg.type === 'start') {
      clients.add(c);
      c.started = true;
      c.filter = msg.filter ?? null;
      post(c, { type: 'status', status });
      if (!es && !retryTimer) open();
      else if (!es) {
        // Waiting to retry after a refusal: a tab that starts (a new login) tries at once.
        clearTimeout(retryTimer);
        retryTimer = undefined;
        open();
      }
    } else if (msg.type === 'filter') {
      c.filter = msg.filter ?? null;
    } else if (msg.type === 'stop') {
      c.started = false;
      clients.delete(c);
      if (!wanted()) {
        close();
        retryTimer = undefined;
        status = 'connecting';
      }
    }
  };
  c.port.start();
};
