// Live updates from /api/v1/events. Pages subscribe to task_instance and dag_run events and apply
// them in place; while the stream is down they may poll (at most every 5 s, see
// usePollWhileDown), and when it comes back they resync once. One stream serves every tab of the
// browser (a SharedWorker, live.worker.ts); where SharedWorker is missing each tab opens its own.
// The browser resends Last-Event-ID when it reconnects by itself; when a stream has to be opened
// anew (the server refused it, or a tab's own stream changes its DAG filter) the last id goes in
// the last_event_id query.
import { signal } from '@preact/signals';
import { useEffect, useMemo, useRef } from 'preact/hooks';

export interface TiEvent {
  dag_id: string;
  dag_run_id: string;
  task_id: string;
  map_index: number;
  state: string | null;
  try_number: number;
  timestamp: string;
}

export interface RunEvent {
  dag_id: string;
  dag_run_id: string;
  state: string;
  timestamp: string;
}

export type LiveStatus = 'off' | 'connecting' | 'open' | 'down';
export const liveStatus = signal<LiveStatus>('off');

const tiSubs = new Set<(e: TiEvent) => void>();
const runSubs = new Set<(e: RunEvent) => void>();
const resyncSubs = new Set<() => void>();

let filter: string | null = null;
let wanted = false;
let probe: () => void = () => {};

/** Sets what to call when the server closes the stream (the app checks its session). */
export function setStreamRefusedHandler(fn: () => void): void {
  probe = fn;
}

/** What arrived, for tests and for a look in the console: window.__sluiceLive. */
const stats = { events: 0, last: '', transport: '' };
(window as unknown as { __sluiceLive: typeof stats }).__sluiceLive = stats;

function emit<T>(subs: Set<(e: T) => void>, e: T): void {
  stats.events++;
  const x = e as { dag_run_id?: string; task_id?: string; state?: string };
  stats.last = `${x.dag_run_id ?? ''} ${x.task_id ?? ''} ${x.state ?? ''}`;
  for (const fn of [...subs]) {
    try {
      fn(e);
    } catch (err) {
      console.warn('live event handler failed', err);
    }
  }
}

function resync(): void {
  for (const fn of [...resyncSubs]) fn();
}

/* ----- transport 1: one stream for all tabs, in a SharedWorker (see live.worker.ts) ----- */

let port: MessagePort | null = null;

function sharedPort(): MessagePort | null {
  if (port) return port;
  if (typeof SharedWorker === 'undefined') return null;
  try {
    const w = new SharedWorker(new URL('./live.worker.ts', import.meta.url), { type: 'module', name: 'sluice-live' });
    port = w.port;
    port.onmessage = (m: MessageEvent) => {
      const msg = m.data as { type: string; status?: LiveStatus; event?: unknown };
      if (!wanted) return;
      if (msg.type === 'ti') emit(tiSubs, msg.event as TiEvent);
      else if (msg.type === 'run') emit(runSubs, msg.event as RunEvent);
      else if (msg.type === 'status' && msg.status) liveStatus.value = msg.status;
      else if (msg.type === 'resync') resync();
      else if (msg.type === 'refused') probe();
    };
    port.start();
    window.addEventListener('pagehide', () => port?.postMessage({ type: 'stop' }));
    return port;
  } catch {
    return null;
  }
}

/* ----- transport 2: an EventSource of this tab's own (no SharedWorker in this browser) ----- */

let es: EventSource | null = null;
let lastId = '';
let retryTimer: number | undefined;
let retryDelay = 1000;
let wasDown = false;

function parse<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

function openDirect(): void {
  closeDirect();
  if (!wanted) return;
  const q = new URLSearchParams();
  if (filter) q.set('dag_id', filter);
  if (lastId) q.set('last_event_id', lastId);
  const s = q.toString();
  // A deliberate reopen (a new DAG filter) keeps showing "Live": the gap is short and replayed.
  if (liveStatus.value === 'off') liveStatus.value = 'connecting';
  const src = new EventSource('/api/v1/events' + (s ? '?' + s : ''), { withCredentials: true });
  es = src;
  src.onopen = () => {
    if (es !== src) return;
    retryDelay = 1000;
    liveStatus.value = 'open';
    if (wasDown) {
      wasDown = false;
      resync();
    }
  };
  src.onerror = () => {
    if (es !== src) return;
    liveStatus.value = 'down';
    wasDown = true;
    if (src.readyState === EventSource.CLOSED) {
      // The server refused the stream (401, 503...) or it is gone: open it again later, and ask
      // whether the session is still valid (a 401 there sends the user to the login page).
      es = null;
      probe();
      clearTimeout(retryTimer);
      retryTimer = window.setTimeout(openDirect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    }
  };
  const on = (ev: Event, subs: Set<(e: never) => void>) => {
    const m = ev as MessageEvent;
    if (m.lastEventId) lastId = m.lastEventId;
    const e = parse<never>(m.data);
    if (e) emit(subs, e);
  };
  src.addEventListener('task_instance', (ev) => on(ev, tiSubs as Set<(e: never) => void>));
  src.addEventListener('dag_run', (ev) => on(ev, runSubs as Set<(e: never) => void>));
}

function closeDirect(): void {
  clearTimeout(retryTimer);
  if (es) {
    es.close();
    es = null;
  }
}

/* ----- the app's side ----- */

/** Starts the stream (after login). */
export function startLive(): void {
  if (wanted) return;
  wanted = true;
  if (liveStatus.value === 'off') liveStatus.value = 'connecting';
  const p = sharedPort();
  stats.transport = p ? 'shared' : 'direct';
  if (p) p.postMessage({ type: 'start', filter });
  else openDirect();
}

/** Stops it (logout). */
export function stopLive(): void {
  wanted = false;
  if (port) port.postMessage({ type: 'stop' });
  closeDirect();
  liveStatus.value = 'off';
  lastId = '';
}

/** Narrows the events to one DAG (null: every DAG). A tab's own stream reopens, resuming after
 * the last event; the shared stream only filters what it passes to this tab. */
export function setLiveFilter(dag_id: string | null): void {
  if (dag_id === filter) return;
  filter = dag_id;
  if (!wanted) return;
  if (port) port.postMessage({ type: 'filter', filter });
  else openDirect();
}

export function onTaskInstance(fn: (e: TiEvent) => void): () => void {
  tiSubs.add(fn);
  return () => tiSubs.delete(fn);
}

export function onDagRun(fn: (e: RunEvent) => void): () => void {
  runSubs.add(fn);
  return () => runSubs.delete(fn);
}

/** Called when the stream is back after it was down: events may have been missed. */
export function onResync(fn: () => void): () => void {
  resyncSubs.add(fn);
  return () => resyncSubs.delete(fn);
}

/** Hook: the stream narrowed to `dag_id` while the component is mounted. */
export function useLiveFilter(dag_id: string | null): void {
  useEffect(() => {
    setLiveFilter(dag_id);
  }, [dag_id]);
}

/** Hook: subscribe to events while mounted; the handler may change between renders. */
export function useLive(handlers: { ti?: (e: TiEvent) => void; run?: (e: RunEvent) => void; resync?: () => void }): void {
  const ref = useRef(handlers);
  ref.current = handlers;
  useEffect(() => {
    const a = onTaskInstance((e) => ref.current.ti?.(e));
    const b = onDagRun((e) => ref.current.run?.(e));
    const c = onResync(() => ref.current.resync?.());
    return () => {
      a();
      b();
      c();
    };
  }, []);
}

/** Hook: calls `fn` every `ms` (at least 5 s) while the stream is down, and once when it is back. */
export function usePollWhileDown(fn: () => void, ms = 5000): void {
  const ref = useRef(fn);
  ref.current = fn;
  const status = liveStatus.value;
  useEffect(() => {
    if (status !== 'down') return;
    const t = window.setInterval(() => ref.current(), Math.max(ms, 5000));
    return () => clearInterval(t);
  }, [status, ms]);
  useEffect(() => onResync(() => ref.current()), []);
}

/** A function that runs `fn` at most once per `ms`, trailing (the last call always runs). */
export function throttle(fn: () => void, ms: number): (() => void) & { cancel(): void } {
  let timer: number | undefined;
  let last = 0;
  const run = () => {
    timer = undefined;
    last = Date.now();
    fn();
  };
  const t = (() => {
    if (timer !== undefined) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = window.setTimeout(run, wait);
  }) as (() => void) & { cancel(): void };
  t.cancel = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  return t;
}

/**
 * A loader for a component: `fn` runs on mount and whenever `deps` change, and the returned
 * function runs it again, at most once per `ms` (trailing); pending runs stop on unmount.
 */
export function useThrottledLoad(fn: () => void, ms: number, deps: unknown[]): (() => void) & { cancel(): void } {
  const load = useMemo(() => throttle(fn, ms), deps);
  useEffect(() => {
    load();
    return () => load.cancel();
  }, [load]);
  return load;
}
