// The log of one try: its tail first (64 KiB), earlier chunks when scrolled to the top, the live
// tail while the try runs (the continuation token followed once a second, never a reload), ANSI
// colours as spans of text (nothing is parsed as HTML), wrap toggle, search in what is loaded, and
// links to the raw file. Only the lines in view are in the DOM, and at most 200,000 lines are held:
// a log of any size opens at its end and scrolls.
//
// Routes: GET /api/v1/dags/{dag}/dagRuns/{run}/taskInstances/{task}/logs/{try}
//   ?tail_bytes=N             the last N bytes from a line start, with "start" and "size"
//   ?token=OFFSET&max_bytes=N  N bytes from OFFSET, with "start" and "size"
//   &map_index=M               for an instance of a mapped task
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { parseLine, sgrStyle } from './ansi';
import { LogWindow } from './logModel';
import './dag.css';

const TAIL_BYTES = 64 * 1024;
const CHUNK_BYTES = 256 * 1024;
const MAX_CHUNK = 1024 * 1024; // the server's cap per reply
const POLL_MS = 1000;
const OVERSCAN = 30;
const WRAP_KEY = 'sluice.log.wrap';

interface LogReply {
  continuation_token?: string;
  content?: string;
  start?: number;
  size?: number;
}

export interface LogViewProps {
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  running: boolean;
  fetchJson: (url: string) => Promise<any>;
}

type Status = { kind: 'loading' } | { kind: 'ready' } | { kind: 'missing'; text: string } | { kind: 'error'; text: string };

function errorStatus(err: unknown): number {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : 0;
}

function errorText(err: unknown): string {
  const e = err as { detail?: unknown; message?: unknown; title?: unknown } | null;
  const d = e && typeof e.detail === 'string' && e.detail ? e.detail : null;
  const m = e && typeof e.message === 'string' && e.message ? e.message : null;
  return d ?? m ?? String(err);
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1048576).toFixed(n < 10485760 ? 1 : 0)} MiB`;
  return `${(n / 1073741824).toFixed(1)} GiB`;
}

function readWrap(): boolean {
  try {
    return localStorage.getItem(WRAP_KEY) === '1';
  } catch {
    return false;
  }
}

/** The URL of a try's log with the given query parameters. */
export function logUrl(p: Pick<LogViewProps, 'dag_id' | 'run_id' | 'task_id' | 'map_index' | 'try_number'>, params: Record<string, string | number> = {}): string {
  const e = encodeURIComponent;
  const base = `/api/v1/dags/${e(p.dag_id)}/dagRuns/${e(p.run_id)}/taskInstances/${e(p.task_id)}/logs/${p.try_number}`;
  const q = new URLSearchParams();
  if (p.map_index >= 0) q.set('map_index', String(p.map_index));
  for (const [k, v] of Object.entries(params)) q.set(k, String(v));
  const s = q.toString();
  return s ? `${base}?${s}` : base;
}

function LogLine({ text, start }: { text: string; start: ReturnType<LogWindow['sgrAt']> }): JSX.Element {
  const { segments } = parseLine(text, start);
  if (!segments.length) return <>{'\u200b'}</>;
  return (
    <>
      {segments.map((s) => {
        if (!s.sgr) return s.text;
        const { cls, style } = sgrStyle(s.sgr);
        return (
          <span class={cls || undefined} style={style ?? undefined}>
            {s.text}
          </span>
        );
      })}
    </>
  );
}

export function LogView(props: LogViewProps) {
  const { running, fetchJson } = props;
  const ids = { dag_id: props.dag_id, run_id: props.run_id, task_id: props.task_id, map_index: props.map_index, try_number: props.try_number };
  const key = logUrl(ids);
  const win = useRef<LogWindow>(new LogWindow());
  const gen = useRef(0);
  const busy = useRef(false);
  const [version, setVersion] = useState(0);
  const bump = () => setVersion((v) => v + 1);
  const [status, setStatus] = useState<Status>({ kind: 'loading' });
  const [wrap, setWrapState] = useState(readWrap);
  const [loadingUp, setLoadingUp] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const probe = useRef<HTMLSpanElement>(null);
  const [box, setBox] = useState({ top: 0, height: 400, width: 800 });
  const [charW, setCharW] = useState(7.8);
  const [lineH, setLineH] = useState(18);
  const stick = useRef(true);
  const [atBottom, setAtBottom] = useState(true);
  // Scroll corrections to apply after the next render: lines added at the top (keep the view
  // still), lines dropped at the top, or a jump to the bottom.
  const adjust = useRef<{ addedTop: number; droppedTop: number; toBottom: boolean }>({ addedTop: 0, droppedTop: 0, toBottom: false });
  const [query, setQuery] = useState('');
  const [hit, setHit] = useState(-1);

  const setWrap = (v: boolean) => {
    setWrapState(v);
    try {
      localStorage.setItem(WRAP_KEY, v ? '1' : '0');
    } catch {
      /* private mode: not kept */
    }
  };

  const getJson = (params: Record<string, string | number>) => fetchJson(logUrl(ids, params)) as Promise<LogReply>;

  // --- loading -------------------------------------------------------------------------------
  const loadTail = async (g: number) => {
    const r = await getJson({ tail_bytes: TAIL_BYTES });
    if (g !== gen.current) return;
    const content = r.content ?? '';
    const token = Number(r.continuation_token ?? 0);
    const start = typeof r.start === 'number' ? r.start : Math.max(0, token - content.length);
    const size = typeof r.size === 'number' ? r.size : token;
    win.current.reset(content, start, token, size);
    stick.current = true;
    adjust.current.toBottom = true;
    setStatus({ kind: 'ready' });
    bump();
  };

  useEffect(() => {
    const g = ++gen.current;
    win.current = new LogWindow();
    busy.current = true;
    setStatus({ kind: 'loading' });
    setHit(-1);
    loadTail(g)
      .catch((err) => {
        if (g !== gen.current) return;
        if (errorStatus(err) === 404) setStatus({ kind: 'missing', text: errorText(err) });
        else setStatus({ kind: 'error', text: errorText(err) });
      })
      .finally(() => {
        if (g === gen.current) busy.current = false;
      });
    return () => {
      gen.current++;
    };
  }, [key]);

  /** One step of the live tail: what the file has past the window's end. */
  const follow = async () => {
    const w = win.current;
    const g = gen.current;
    if (busy.current) return;
    if (status.kind === 'missing' || status.kind === 'error' || status.kind === 'loading') {
      // The try may have started writing since: try the tail again.
      busy.current = true;
      try {
        await loadTail(g);
      } catch {
        /* still nothing: keep the message */
      } finally {
        if (g === gen.current) busy.current = false;
      }
      return;
    }
    if (!w.attached) return;
    busy.current = true;
    try {
      const r = await getJson({ token: w.end, max_bytes: MAX_CHUNK });
      if (g !== gen.current || w !== win.current) return;
      const content = r.content ?? '';
      const token = Number(r.continuation_token ?? w.end);
      const size = typeof r.size === 'number' ? r.size : token;
      if (size < w.end) {
        await loadTail(g); // the file was cut or replaced
        return;
      }
      if (size - token > MAX_CHUNK) {
        // Far behind (a burst of output): jump to the tail rather than read it all.
        await loadTail(g);
        return;
      }
      if (!content && size === w.size) return;
      const dropped = w.append(content, token, size);
      if (dropped) adjust.current.droppedTop += dropped;
      if (stick.current) adjust.current.toBottom = true;
      bump();
    } catch {
      /* a failed poll is retried at the next tick */
    } finally {
      if (g === gen.current) busy.current = false;
    }
  };
  const followRef = useRef(follow);
  followRef.current = follow;

  useEffect(() => {
    if (!running) {
      // The try ended: read what it wrote last, once.
      const t = setTimeout(() => followRef.current(), 300);
      return () => clearTimeout(t);
    }
    const id = setInterval(() => followRef.current(), POLL_MS);
    return () => clearInterval(id);
  }, [running, key]);

  const loadEarlier = async () => {
    const w = win.current;
    const g = gen.current;
    if (busy.current || w.start <= 0 || status.kind !== 'ready') return;
    busy.current = true;
    setLoadingUp(true);
    try {
      let size = CHUNK_BYTES;
      for (;;) {
        const from = Math.max(0, w.start - size);
        const r = await getJson({ token: from, max_bytes: w.start - from });
        if (g !== gen.current || w !== win.current) return;
        const { added, dropped } = w.prepend(r.content ?? '', from);
        if (added > 0 || from === 0) {
          adjust.current.addedTop += added;
          void dropped;
          bump();
          break;
        }
        if (size >= MAX_CHUNK) {
          // One line longer than a megabyte: show it cut rather than never.
          w.prepend('\n' + (r.content ?? ''), from);
          adjust.current.addedTop += 1;
          bump();
          break;
        }
        size = Math.min(MAX_CHUNK, size * 4);
      }
    } catch {
      /* try again at the next scroll */
    } finally {
      if (g === gen.current) {
        busy.current = false;
        setLoadingUp(false);
      }
    }
  };

  const loadLater = async () => {
    const w = win.current;
    const g = gen.current;
    if (busy.current || w.attached || status.kind !== 'ready') return;
    busy.current = true;
    try {
      const r = await getJson({ token: w.end, max_bytes: CHUNK_BYTES });
      if (g !== gen.current || w !== win.current) return;
      const token = Number(r.continuation_token ?? w.end);
      const size = typeof r.size === 'number' ? r.size : token;
      const dropped = w.appendChunk(r.content ?? '', token, size);
      if (dropped) adjust.current.droppedTop += dropped;
      bump();
    } catch {
      /* next scroll */
    } finally {
      if (g === gen.current) busy.current = false;
    }
  };

  const jumpToEnd = async () => {
    const g = gen.current;
    if (win.current.attached) {
      stick.current = true;
      adjust.current.toBottom = true;
      bump();
      return;
    }
    busy.current = true;
    try {
      await loadTail(g);
    } catch (err) {
      setStatus({ kind: 'error', text: errorText(err) });
    } finally {
      if (g === gen.current) busy.current = false;
    }
  };

  // --- geometry ------------------------------------------------------------------------------
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => {
      const p = probe.current;
      if (p) {
        const r = p.getBoundingClientRect();
        if (r.width > 0) setCharW(r.width / 64);
        if (r.height > 0) setLineH(Math.round(r.height));
      }
      setBox({ top: el.scrollTop, height: el.clientHeight, width: el.clientWidth });
    };
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [status.kind]);

  const w = win.current;
  const count = w.count;
  const PAD = 8;
  const cols = wrap ? Math.max(1, Math.floor((box.width - 2 * PAD) / charW)) : 0;
  // rowStart[i]: the visual row where line i begins (lines wrap to several rows).
  const rowStart = useMemo(() => {
    if (!wrap) return null;
    const a = new Float64Array(count + 1);
    let r = 0;
    for (let i = 0; i < count; i++) {
      a[i] = r;
      r += Math.max(1, Math.ceil(w.widthAt(i) / cols));
    }
    a[count] = r;
    return a;
  }, [version, wrap, cols, count]);
  const rowOf = (i: number) => (rowStart ? rowStart[i] : i);
  const totalRows = rowOf(count);
  const prevRowStart = useRef<Float64Array | null>(null);

  const lineAtRow = (row: number): number => {
    if (!rowStart) return Math.max(0, Math.min(count - 1, Math.floor(row)));
    let lo = 0;
    let hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (rowStart[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    const a = adjust.current;
    if (el) {
      if (a.toBottom) {
        el.scrollTop = el.scrollHeight;
      } else {
        let delta = 0;
        if (a.addedTop) delta += rowOf(a.addedTop) * lineH;
        if (a.droppedTop) {
          const old = prevRowStart.current;
          delta -= (old && a.droppedTop < old.length ? old[a.droppedTop] : a.droppedTop) * lineH;
        }
        if (delta) el.scrollTop = Math.max(0, el.scrollTop + delta);
      }
      if (a.toBottom || a.addedTop || a.droppedTop) setBox((b) => ({ ...b, top: el.scrollTop }));
    }
    adjust.current = { addedTop: 0, droppedTop: 0, toBottom: false };
    prevRowStart.current = rowStart;
  }, [version, rowStart]);

  // Keep the same line at the top when wrapping is switched.
  const wrapToggle = (v: boolean) => {
    const el = scroller.current;
    const first = el ? lineAtRow(el.scrollTop / lineH) : 0;
    setWrap(v);
    requestAnimationFrame(() => {
      const e2 = scroller.current;
      if (!e2) return;
      if (stick.current) e2.scrollTop = e2.scrollHeight;
      else {
        const w2 = win.current;
        const c2 = v ? Math.max(1, Math.floor((e2.clientWidth - 2 * PAD) / charW)) : 0;
        let r = 0;
        if (v) for (let i = 0; i < first; i++) r += Math.max(1, Math.ceil(w2.widthAt(i) / c2));
        else r = first;
        e2.scrollTop = r * lineH;
      }
    });
  };

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const bottom = el.scrollTop + el.clientHeight >= el.scrollHeight - lineH;
    stick.current = bottom && win.current.attached;
    setAtBottom(bottom && win.current.attached);
    setBox((b) => (b.top === el.scrollTop && b.height === el.clientHeight ? b : { ...b, top: el.scrollTop, height: el.clientHeight }));
    if (el.scrollTop < lineH * 40 && win.current.start > 0) loadEarlier();
    if (!win.current.attached && el.scrollTop + el.clientHeight >= el.scrollHeight - lineH * 40) loadLater();
  };

  // --- search in the loaded lines ------------------------------------------------------------
  const hits = useMemo(() => {
    const q = query.trim().toLowerCase();
    if (!q) return [] as number[];
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const l = w.line(i);
      if (l.toLowerCase().includes(q)) {
        // Escapes can split the text: check the plain text when the raw line matched.
        out.push(i);
        if (out.length >= 100000) break;
      }
    }
    return out;
  }, [query, version, count]);
  const goHit = (k: number) => {
    if (!hits.length) return;
    const n = ((k % hits.length) + hits.length) % hits.length;
    setHit(n);
    const el = scroller.current;
    if (el) {
      el.scrollTop = Math.max(0, rowOf(hits[n]) * lineH - el.clientHeight / 3);
      stick.current = false;
    }
  };
  const hitLine = hit >= 0 && hit < hits.length ? hits[hit] : -1;

  // --- render --------------------------------------------------------------------------------
  const firstRow = Math.max(0, Math.floor(box.top / lineH) - OVERSCAN);
  const lastRow = Math.ceil((box.top + box.height) / lineH) + OVERSCAN;
  const rows: JSX.Element[] = [];
  if (count > 0) {
    for (let i = lineAtRow(firstRow); i < count && rowOf(i) <= lastRow; i++) {
      rows.push(
        <div class={i === hitLine ? 'log-line log-hit' : 'log-line'} style={{ top: `${PAD + rowOf(i) * lineH}px` }} key={w.start + ':' + i}>
          <LogLine text={w.line(i)} start={w.sgrAt(i)} />
        </div>,
      );
    }
  }
  const rawUrl = logUrl(ids, { full_content: 'true', format: 'text' });
  const shownBytes = w.end - w.start;
  const st = status.kind;

  return (
    <div class={`log-view${wrap ? ' log-wrap' : ''}`} data-testid="log-view">
      <div class="log-bar" role="toolbar" aria-label="Log">
        <label class="log-check">
          <input type="checkbox" checked={wrap} onChange={(e) => wrapToggle((e.target as HTMLInputElement).checked)} /> Wrap lines
        </label>
        <form
          class="log-find"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            goHit(hit + 1);
          }}
        >
          <input
            type="search"
            placeholder="Find in log"
            aria-label="Find in the loaded log"
            value={query}
            onInput={(e) => {
              setQuery((e.target as HTMLInputElement).value);
              setHit(-1);
            }}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && e.shiftKey) {
                e.preventDefault();
                goHit(hit - 1);
              }
            }}
          />
          {query.trim() && (
            <>
              <span class="log-count" aria-live="polite">
                {hits.length ? `${hit >= 0 ? hit + 1 : 0} / ${hits.length.toLocaleString('en-US')}` : 'no match'}
              </span>
              <button type="button" class="btn btn-small" onClick={() => goHit(hit - 1)} disabled={!hits.length} aria-label="Previous match" title="Previous match (Shift+Enter)">
                ↑
              </button>
              <button type="submit" class="btn btn-small" disabled={!hits.length} aria-label="Next match" title="Next match (Enter)">
                ↓
              </button>
            </>
          )}
        </form>
        <span class="log-info muted">
          {running && st !== 'error' && (
            <span class="log-live" title="New output appears as the task writes it">
              <span aria-hidden="true">●</span> live
            </span>
          )}
          {st === 'ready' && w.size > 0 && (
            <span title={`bytes ${w.start.toLocaleString('en-US')}–${w.end.toLocaleString('en-US')} of ${w.size.toLocaleString('en-US')}`}>
              {shownBytes >= w.size ? fmtBytes(w.size) : `${fmtBytes(shownBytes)} of ${fmtBytes(w.size)} loaded`}
            </span>
          )}
        </span>
        <a class="btn btn-small" href={rawUrl} target="_blank" rel="noopener" data-testid="log-raw">
          Raw ↗
        </a>
        <a class="btn btn-small" href={rawUrl} download={`${props.task_id}${props.map_index >= 0 ? `.${props.map_index}` : ''}.try${props.try_number}.log`}>
          Download
        </a>
      </div>
      <div class="log-body">
        <span class="log-probe" ref={probe} aria-hidden="true">
          {'0'.repeat(64)}
        </span>
        {st === 'loading' && <div class="log-msg">Loading the log…</div>}
        {st === 'missing' && (
          <div class="log-msg" role="status" data-testid="log-missing">
            {running ? 'The log does not exist yet: it appears when the try writes to it.' : `No log for try ${props.try_number}: ${status.text}`}
          </div>
        )}
        {st === 'error' && (
          <div class="log-msg log-error" role="alert">
            The log could not be read: {status.text}{' '}
            <button type="button" class="btn btn-small" onClick={() => followRef.current()}>
              Retry
            </button>
          </div>
        )}
        {st === 'ready' && count === 0 && (
          <div class="log-msg" role="status" data-testid="log-empty">
            {running ? 'No output yet: waiting for the task to write…' : 'The log is empty: the task wrote nothing.'}
          </div>
        )}
        {st === 'ready' && count > 0 && (
          <div class="log-scroll" ref={scroller} onScroll={onScroll} tabIndex={0} role="log" aria-label={`Log of ${props.task_id}, try ${props.try_number}`} aria-live="off" data-testid="log-lines">
            {w.start > 0 && (
              <div class="log-earlier" style={{ top: '0px' }}>
                {(loadingUp || box.top < lineH * 60) && <span>{loadingUp ? 'Loading earlier lines…' : `${fmtBytes(w.start)} earlier: scroll up to read`}</span>}
              </div>
            )}
            <div class="log-space" style={{ height: `${totalRows * lineH + 2 * PAD}px`, width: wrap ? undefined : `${w.maxWidth * charW + 2 * PAD}px` }}>
              {rows}
            </div>
          </div>
        )}
        {st === 'ready' && count > 0 && !atBottom && (
          <button type="button" class="btn btn-small log-jump" onClick={jumpToEnd}>
            ↓ {running ? 'Follow the end' : 'Jump to the end'}
          </button>
        )}
      </div>
    </div>
  );
}
