// The grid of a DAG: runs as columns (newest at the left), tasks as rows, one square per task
// instance with its state's colour and icon. Virtualised both ways (only the rows and columns in
// view are in the DOM, fixed sizes, sticky task names and run header), so 1,000 tasks x thousands
// of runs scroll smoothly. Task groups fold; a mapped task is one row (its summary state, counts in
// the tooltip) that unfolds into its instances, fetched per visible run through fetchMapped.
// Keyboard: the grid is one tab stop; arrows move the active cell, Home/End/PageUp/PageDown jump,
// Enter opens it (a run header opens the run, a name unfolds its row).
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { fmtDate, fmtDuration } from '../format';
import { stateIcon, stateName, stateWords, summaryState, type GridData, type GridRun, type GridTask, type TaskInstance } from './types';
import { snappedRange } from './virtual';
import './dag.css';

const ROW_H = 22;
const COL_W = 20;
const HEAD_H = 86;
const LABEL_H = 16;
const ICON_H = 18;
const BAR_H = HEAD_H - LABEL_H - ICON_H - 6;
const BLOCK = 8;
const NAME_W = 280;
const MIN_NAME_W = 140;
const MAX_FETCHES = 4;

export interface GridProps {
  data: GridData;
  onCell(run_id: string, task_id: string, map_index: number): void;
  onRun(run_id: string): void;
  selected?: { run_id: string; task_id?: string; map_index?: number };
  /** Called when the view is scrolled to the oldest loaded run and more exist (data.older). */
  onLoadOlder?(): void;
  /** Mapped task ids shown unfolded at first. */
  expanded?: string[];
  onExpand?(task_id: string, open: boolean): void;
  /** The instances of a mapped task in a run (needed to unfold it). */
  fetchMapped?(run_id: string, task_id: string): Promise<TaskInstance[]>;
}

type Row =
  | { kind: 'group'; key: string; group: string; members: number[]; open: boolean }
  | { kind: 'task'; key: string; t: number; depth: number }
  | { kind: 'inst'; key: string; t: number; mi: number; depth: number };

interface MappedEntry {
  sig: string;
  tis: Map<number, TaskInstance> | null;
  loading: boolean;
  failed: boolean;
}

function countsSig(c: Record<string, number> | undefined): string {
  if (!c) return '';
  return Object.keys(c)
    .sort()
    .map((k) => `${k}=${c[k]}`)
    .join(',');
}

function countsTotal(c: Record<string, number> | undefined): number {
  let n = 0;
  if (c) for (const k in c) n += c[k];
  return n;
}

function countsWords(c: Record<string, number> | undefined): string {
  if (!c) return '';
  return Object.entries(c)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([s, n]) => `${n} ${stateWords(s === 'none' ? null : s)}`)
    .join(', ');
}

function runSeconds(r: GridRun, now: number): number | null {
  if (!r.start_date) return null;
  const a = Date.parse(r.start_date);
  const b = r.end_date ? Date.parse(r.end_date) : now;
  return Number.isNaN(a) || Number.isNaN(b) ? null : Math.max(0, (b - a) / 1000);
}

const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayCache = new Map<string, string>();
function dayOf(iso: string | null): string {
  if (!iso) return '';
  const key = iso;
  let v = dayCache.get(key);
  if (v === undefined) {
    const d = new Date(iso);
    v = Number.isNaN(d.getTime()) ? '' : dayFormat.format(d);
    if (dayCache.size > 5000) dayCache.clear();
    dayCache.set(key, v);
  }
  return v;
}

interface Tip {
  x: number;
  y: number;
  title: string;
  lines: string[];
  state: string | null;
}

/** The hover card: its own component, so that moving the mouse re-renders only it. */
function TipCard({ setter }: { setter: { current: ((t: Tip | null) => void) | null } }) {
  const [tip, setTip] = useState<Tip | null>(null);
  setter.current = setTip;
  if (!tip) return null;
  return (
    <div class="dg-tip" style={{ left: `${tip.x}px`, top: `${tip.y}px` }} role="tooltip">
      <div class="dg-tip-title">
        <span class={`dg-tip-state state-${stateName(tip.state)}`} aria-hidden="true">
          {stateIcon(tip.state)}
        </span>
        {tip.title}
      </div>
      {tip.lines.map((l) => (
        <div class="dg-tip-line">{l}</div>
      ))}
    </div>
  );
}

export function Grid(props: GridProps) {
  const { data, onCell, onRun, selected, onLoadOlder, fetchMapped } = props;
  const { tasks, runs } = data;
  const scroller = useRef<HTMLDivElement>(null);
  const root = useRef<HTMLDivElement>(null);
  const tipSet = useRef<((t: Tip | null) => void) | null>(null);
  const [nameW, setNameW] = useState(NAME_W);
  const [view, setView] = useState({ x: 0, y: 0, w: 1200, h: 600 });
  const [open, setOpen] = useState<Set<string>>(() => new Set(props.expanded ?? []));
  const [folded, setFolded] = useState<Set<string>>(() => new Set());
  const [active, setActive] = useState<{ r: number; c: number }>({ r: 0, c: 0 });
  const [focused, setFocused] = useState(false);
  const [, setMappedVersion] = useState(0);
  const mapped = useRef(new Map<string, MappedEntry>());
  const queue = useRef<{ run: string; task: string; sig: string }[]>([]);
  const inflight = useRef(0);
  const olderAsked = useRef(-1);

  // --- rows: groups, tasks, unfolded mapped instances -------------------------------------------
  const maxInstances = useMemo(() => {
    const m = new Map<string, number>();
    for (const t of tasks) if (t.mapped) m.set(t.task_id, 0);
    if (m.size)
      for (const r of runs)
        for (const id in r.mapped) {
          const n = countsTotal(r.mapped[id]);
          if (n > (m.get(id) ?? 0)) m.set(id, n);
        }
    return m;
  }, [tasks, runs]);

  const rows = useMemo(() => {
    const out: Row[] = [];
    const groups = new Map<string, number[]>();
    tasks.forEach((t, i) => {
      if (t.group) {
        const g = groups.get(t.group);
        if (g) g.push(i);
        else groups.set(t.group, [i]);
      }
    });
    const pushTask = (i: number, depth: number) => {
      const t = tasks[i];
      out.push({ kind: 'task', key: 't:' + t.task_id, t: i, depth });
      if (t.mapped && open.has(t.task_id)) {
        const n = maxInstances.get(t.task_id) ?? 0;
        for (let mi = 0; mi < n; mi++) out.push({ kind: 'inst', key: `i:${t.task_id}:${mi}`, t: i, mi, depth: depth + 1 });
      }
    };
    const seen = new Set<string>();
    tasks.forEach((t, i) => {
      if (!t.group) return pushTask(i, 0);
      if (seen.has(t.group)) return;
      seen.add(t.group);
      const members = groups.get(t.group) ?? [i];
      const isOpen = !folded.has(t.group);
      out.push({ kind: 'group', key: 'g:' + t.group, group: t.group, members, open: isOpen });
      if (isOpen) for (const m of members) pushTask(m, 1);
    });
    return out;
  }, [tasks, open, folded, maxInstances]);

  const runIndex = useMemo(() => {
    const m = new Map<string, number>();
    runs.forEach((r, i) => m.set(r.dag_run_id, i));
    return m;
  }, [runs]);

  const now = Date.now();
  // The bar scale: a run far longer than the others (one stuck for days) does not flatten them;
  // bars past the scale are cut at the top.
  const maxSeconds = useMemo(() => {
    const d: number[] = [];
    for (const r of runs) {
      const s = runSeconds(r, now);
      if (s !== null) d.push(s);
    }
    if (!d.length) return 1;
    d.sort((a, b) => a - b);
    const p95 = d[Math.min(d.length - 1, Math.floor(d.length * 0.95))];
    return Math.max(1, Math.min(d[d.length - 1], p95 * 1.5));
  }, [runs]);

  const nrows = rows.length;
  const ncols = runs.length;
  const bodyW = ncols * COL_W;
  const bodyH = nrows * ROW_H;

  // --- viewport --------------------------------------------------------------------------------
  const frame = useRef(0);
  const measure = () => {
    frame.current = 0;
    const el = scroller.current;
    if (!el) return;
    const v = { x: el.scrollLeft, y: el.scrollTop, w: el.clientWidth, h: el.clientHeight };
    setView((o) => (o.x === v.x && o.y === v.y && o.w === v.w && o.h === v.h ? o : v));
  };
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    measure();
    const ro = new ResizeObserver(() => measure());
    ro.observe(el);
    return () => {
      ro.disconnect();
      if (frame.current) cancelAnimationFrame(frame.current);
    };
  }, []);

  const [c0, c1] = snappedRange(view.x, view.w - nameW, COL_W, ncols, BLOCK);
  const [r0, r1] = snappedRange(view.y, view.h - HEAD_H, ROW_H, nrows, BLOCK);
  const rangeKey = `${c0}:${c1}:${r0}:${r1}`;
  const lastRange = useRef('');

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    tipSet.current?.(null);
    // Re-render only when the rendered block range changes.
    const [a0, a1] = snappedRange(el.scrollLeft, el.clientWidth - nameW, COL_W, ncols, BLOCK);
    const [b0, b1] = snappedRange(el.scrollTop, el.clientHeight - HEAD_H, ROW_H, nrows, BLOCK);
    const k = `${a0}:${a1}:${b0}:${b1}`;
    if (k !== lastRange.current && !frame.current) frame.current = requestAnimationFrame(measure);
    // Near the oldest run: ask for older ones (once per page).
    if (onLoadOlder && data.older && el.scrollLeft > 0 && el.scrollLeft + el.clientWidth >= nameW + bodyW - COL_W * 6 && olderAsked.current !== ncols) {
      olderAsked.current = ncols;
      onLoadOlder();
    }
  };
  lastRange.current = rangeKey;

  // --- mapped instances: fetched for the visible runs of unfolded mapped rows -----------------------
  const pump = () => {
    if (!fetchMapped) return;
    while (inflight.current < MAX_FETCHES && queue.current.length) {
      const job = queue.current.shift()!;
      const key = job.run + '\u0000' + job.task;
      const e = mapped.current.get(key);
      if (!e || e.sig !== job.sig || !e.loading) continue;
      inflight.current++;
      fetchMapped(job.run, job.task)
        .then((list) => {
          const cur = mapped.current.get(key);
          if (!cur || cur.sig !== job.sig) return;
          const m = new Map<number, TaskInstance>();
          for (const ti of list) if (ti.task_id === job.task) m.set(ti.map_index, ti);
          cur.tis = m;
          cur.failed = false;
        })
        .catch(() => {
          const cur = mapped.current.get(key);
          if (cur && cur.sig === job.sig) cur.failed = true;
        })
        .finally(() => {
          const cur = mapped.current.get(key);
          if (cur && cur.sig === job.sig) cur.loading = false;
          inflight.current--;
          setMappedVersion((v) => v + 1);
          pump();
        });
    }
  };
  const wanted: { run: string; task: string; sig: string }[] = [];
  const mappedEntry = (run: GridRun, task: GridTask): MappedEntry | undefined => {
    const key = run.dag_run_id + '\u0000' + task.task_id;
    const sig = countsSig(run.mapped[task.task_id]);
    let e = mapped.current.get(key);
    if (!e || e.sig !== sig) {
      // New, or its counts changed (a live update): fetch it again, keep showing the old states.
      const old = e?.tis ?? null;
      e = { sig, tis: old, loading: true, failed: false };
      mapped.current.delete(key);
      mapped.current.set(key, e);
      // Bounded: the entries seen longest ago go (fetched again if they come back into view).
      if (mapped.current.size > 800) {
        let k = 0;
        for (const old of mapped.current.keys()) {
          if (k++ >= 200) break;
          if (!mapped.current.get(old)?.loading) mapped.current.delete(old);
        }
      }
      wanted.push({ run: run.dag_run_id, task: task.task_id, sig });
    }
    return e;
  };
  useEffect(() => {
    if (!wanted.length) return;
    queue.current.push(...wanted);
    pump();
  });

  // --- cell contents ----------------------------------------------------------------------------
  const cellState = (row: Row, run: GridRun): { state: string | null; pending?: boolean } => {
    if (row.kind === 'task') return { state: run.states[row.t] ?? null };
    if (row.kind === 'group') {
      const counts: Record<string, number> = {};
      for (const m of row.members) {
        const s = run.states[m] ?? 'none';
        counts[s] = (counts[s] ?? 0) + 1;
      }
      return { state: summaryState(counts) };
    }
    const task = tasks[row.t];
    const total = countsTotal(run.mapped[task.task_id]);
    if (row.mi >= total) return { state: null, pending: false };
    const e = fetchMapped ? mappedEntry(run, task) : undefined;
    const ti = e?.tis?.get(row.mi);
    if (ti) return { state: ti.state };
    return { state: null, pending: !!e?.loading };
  };

  const rowLabel = (row: Row): string => {
    if (row.kind === 'group') return row.group;
    const t = tasks[row.t];
    return row.kind === 'inst' ? `${t.task_id} [${row.mi}]` : t.task_id;
  };

  const cellWords = (row: Row, run: GridRun): { title: string; lines: string[]; state: string | null } => {
    const { state, pending } = cellState(row, run);
    const lines: string[] = [`run ${run.dag_run_id}`];
    if (run.logical_date) lines.push(`logical date ${fmtDate(run.logical_date)}`);
    if (row.kind === 'task') {
      const t = tasks[row.t];
      const tries = run.tries[row.t] ?? 0;
      if (t.mapped) {
        const c = run.mapped[t.task_id];
        lines.push(countsTotal(c) ? `${countsTotal(c)} instances: ${countsWords(c)}` : 'not expanded yet');
      } else if (tries > 1) lines.push(`try ${tries}`);
      lines.push(`${t.operator}${t.trigger_rule && t.trigger_rule !== 'all_success' ? ` · trigger ${t.trigger_rule}` : ''}`);
    } else if (row.kind === 'group') {
      const counts: Record<string, number> = {};
      for (const m of row.members) {
        const s = run.states[m] ?? 'none';
        counts[s] = (counts[s] ?? 0) + 1;
      }
      lines.push(`group of ${row.members.length}: ${countsWords(counts)}`);
    } else if (pending) lines.push('loading…');
    return { title: `${rowLabel(row)}: ${stateWords(state)}`, lines, state };
  };

  // --- actions ----------------------------------------------------------------------------------
  const toggleMapped = (task_id: string) => {
    const n = new Set(open);
    const isOpen = !n.has(task_id);
    if (isOpen) n.add(task_id);
    else n.delete(task_id);
    setOpen(n);
    props.onExpand?.(task_id, isOpen);
  };
  const toggleGroup = (g: string) => {
    const n = new Set(folded);
    if (n.has(g)) n.delete(g);
    else n.add(g);
    setFolded(n);
  };
  const activate = (r: number, c: number) => {
    if (r < 0) {
      if (c >= 0 && c < ncols) onRun(runs[c].dag_run_id);
      return;
    }
    const row = rows[r];
    if (!row) return;
    if (c < 0) {
      if (row.kind === 'group') toggleGroup(row.group);
      else if (row.kind === 'task' && tasks[row.t].mapped && fetchMapped) toggleMapped(tasks[row.t].task_id);
      else {
        const run = (selected && runs[runIndex.get(selected.run_id) ?? -1]) || runs[0];
        if (run) onCell(run.dag_run_id, tasks[row.t].task_id, row.kind === 'inst' ? row.mi : -1);
      }
      return;
    }
    const run = runs[c];
    if (!run) return;
    if (row.kind === 'group') toggleGroup(row.group);
    else onCell(run.dag_run_id, tasks[row.t].task_id, row.kind === 'inst' ? row.mi : -1);
  };

  const scrollToCell = (r: number, c: number) => {
    const el = scroller.current;
    if (!el) return;
    const cw = el.clientWidth - nameW;
    const ch = el.clientHeight - HEAD_H;
    if (c >= 0) {
      const x = c * COL_W;
      if (x < el.scrollLeft) el.scrollLeft = x;
      else if (x + COL_W > el.scrollLeft + cw) el.scrollLeft = x + COL_W - cw;
    }
    if (r >= 0) {
      const y = r * ROW_H;
      if (y < el.scrollTop) el.scrollTop = y;
      else if (y + ROW_H > el.scrollTop + ch) el.scrollTop = y + ROW_H - ch;
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const pageRows = Math.max(1, Math.floor(view.h / ROW_H) - 4);
    let { r, c } = active;
    switch (e.key) {
      case 'ArrowDown':
        r = Math.min(nrows - 1, r + 1);
        break;
      case 'ArrowUp':
        r = Math.max(-1, r - 1);
        break;
      case 'ArrowRight':
        c = Math.min(ncols - 1, c + 1);
        break;
      case 'ArrowLeft':
        c = Math.max(-1, c - 1);
        break;
      case 'PageDown':
        r = Math.min(nrows - 1, r + pageRows);
        break;
      case 'PageUp':
        r = Math.max(0, r - pageRows);
        break;
      case 'Home':
        if (e.ctrlKey) r = 0;
        c = e.ctrlKey ? 0 : -1;
        break;
      case 'End':
        if (e.ctrlKey) r = nrows - 1;
        c = ncols - 1;
        break;
      case 'Enter':
      case ' ':
        e.preventDefault();
        activate(r, c);
        return;
      default:
        return;
    }
    e.preventDefault();
    if (r === -1 && c === -1) c = 0;
    setActive({ r, c });
    scrollToCell(r, c);
    if (c === ncols - 1 && onLoadOlder && data.older && olderAsked.current !== ncols) {
      olderAsked.current = ncols;
      onLoadOlder();
    }
  };

  // Mouse: one handler per layer, the cell read from data attributes.
  const cellAt = (target: EventTarget | null): { r: number; c: number } | null => {
    const el = (target as HTMLElement | null)?.closest?.('[data-c]') as HTMLElement | null;
    if (!el) return null;
    const rowEl = el.closest('[data-r]') as HTMLElement | null;
    return { r: rowEl ? Number(rowEl.dataset.r) : -1, c: Number(el.dataset.c) };
  };
  // A press and release on the same cell opens it. Not onClick: the grid takes focus on
  // mousedown and re-renders the cells' HTML, and a click whose pressed element is gone is never
  // fired, so the first click on an unfocused grid would be lost.
  const pressed = useRef<{ r: number; c: number } | null>(null);
  const onCellsDown = (e: MouseEvent) => {
    pressed.current = e.button === 0 ? cellAt(e.target) : null;
  };
  const onCellsUp = (e: MouseEvent) => {
    const down = pressed.current;
    pressed.current = null;
    if (!down || e.button !== 0) return;
    const p = cellAt(document.elementFromPoint(e.clientX, e.clientY));
    if (!p || p.r !== down.r || p.c !== down.c) return;
    setActive(p);
    activate(p.r, p.c);
  };
  const showTip = (e: MouseEvent) => {
    const p = cellAt(e.target);
    const rootEl = root.current;
    if (!p || !rootEl) return tipSet.current?.(null);
    const cellEl = (e.target as HTMLElement).closest('[data-c]') as HTMLElement;
    const box = cellEl.getBoundingClientRect();
    const rb = rootEl.getBoundingClientRect();
    const run = runs[p.c];
    if (!run) return tipSet.current?.(null);
    let tip: Omit<Tip, 'x' | 'y'>;
    if (p.r < 0) {
      const secs = runSeconds(run, Date.now());
      tip = {
        title: `${run.dag_run_id}: ${stateWords(run.state)}`,
        state: run.state,
        lines: [
          `${run.run_type}${run.logical_date ? ` · ${fmtDate(run.logical_date)}` : ''}`,
          run.start_date ? `started ${fmtDate(run.start_date)}${secs !== null ? ` · ${fmtDuration(secs)}` : ''}` : 'not started',
          ...(run.note ? [`note: ${run.note.length > 120 ? run.note.slice(0, 117) + '…' : run.note}`] : []),
        ],
      };
    } else {
      const row = rows[p.r];
      if (!row) return tipSet.current?.(null);
      tip = cellWords(row, run);
    }
    const x = Math.min(box.left - rb.left + COL_W + 6, rb.width - 300);
    const y = box.top - rb.top + (p.r < 0 ? HEAD_H - 10 : ROW_H + 2);
    tipSet.current?.({ ...tip, x: Math.max(4, x), y });
  };
  const hideTip = () => tipSet.current?.(null);

  // Name column resizing.
  const startResize = (e: PointerEvent) => {
    e.preventDefault();
    const x0 = e.clientX;
    const w0 = nameW;
    const move = (ev: PointerEvent) => setNameW(Math.max(MIN_NAME_W, Math.min(800, w0 + ev.clientX - x0)));
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  };

  // Keep the active cell inside the data when it shrinks.
  useEffect(() => {
    if (active.r >= nrows || active.c >= ncols) setActive({ r: Math.min(active.r, nrows - 1), c: Math.min(active.c, ncols - 1) });
  }, [nrows, ncols]);

  // --- render ---------------------------------------------------------------------------------
  const selCol = selected ? runIndex.get(selected.run_id) ?? -1 : -1;
  const selRow = selected?.task_id
    ? rows.findIndex((row) => row.kind !== 'group' && tasks[row.t].task_id === selected.task_id && (row.kind === 'task' ? (selected.map_index ?? -1) < 0 || !open.has(selected.task_id!) : row.mi === selected.map_index))
    : -1;

  // Day labels: at each column whose day differs from the newer column's, and at the left edge
  // when the first change is not close to it.
  const labels = new Map<number, string>();
  {
    const dayAt = (c: number) => dayOf(runs[c].logical_date ?? runs[c].start_date);
    const first = Math.max(c0, Math.floor(view.x / COL_W));
    let lastX = -1e9;
    const changes: number[] = [];
    for (let c = first + 1; c < c1; c++) if (dayAt(c) && dayAt(c) !== dayAt(c - 1)) changes.push(c);
    if (first < c1 && dayAt(first) && (!changes.length || (changes[0] - first) * COL_W >= 56)) {
      labels.set(first, dayAt(first));
      lastX = first * COL_W;
    }
    for (const c of changes)
      if (c * COL_W - lastX >= 56) {
        labels.set(c, dayAt(c));
        lastX = c * COL_W;
      }
  }
  // A selection made elsewhere (a shared URL, the graph) is scrolled into view once.
  const shownSel = useRef('');
  useEffect(() => {
    const k = `${selected?.run_id ?? ''}\u0000${selected?.task_id ?? ''}`;
    if (!selected || k === shownSel.current || (selCol < 0 && selRow < 0)) return;
    shownSel.current = k;
    scrollToCell(selRow, selCol);
  }, [selected?.run_id, selected?.task_id, selCol, selRow]);

  const headCells: JSX.Element[] = [];
  for (let c = c0; c < c1; c++) {
    const run = runs[c];
    const secs = runSeconds(run, now);
    const h = secs === null ? 2 : Math.max(3, Math.min(BAR_H, Math.round((secs / maxSeconds) * BAR_H)));
    const st = stateName(run.state);
    const label = labels.get(c) ?? null;
    headCells.push(
      <div
        class={`dg-run${c === selCol ? ' dg-sel' : ''}${focused && active.r === -1 && active.c === c ? ' dg-active' : ''}`}
        data-c={c}
        data-run={run.dag_run_id}
        style={{ left: `${c * COL_W}px` }}
        key={run.dag_run_id}
      >
        {label && <span class="dg-day">{label}</span>}
        <span class={`dg-bar state-${st}`} style={{ height: `${h}px` }} />
        <span class={`dg-runstate state-${st}`} aria-hidden="true">
          {stateIcon(run.state)}
        </span>
        {run.note && <span class="dg-note" aria-hidden="true" />}
      </div>,
    );
  }

  const nameEls: JSX.Element[] = [];
  const rowEls: JSX.Element[] = [];
  for (let r = r0; r < r1; r++) {
    const row = rows[r];
    const y = r * ROW_H;
    const isSelRow = r === selRow;
    const activeName = focused && active.r === r && active.c === -1;
    if (row.kind === 'group') {
      nameEls.push(
        <div class={`dg-name dg-group${activeName ? ' dg-active' : ''}`} style={{ top: `${y}px` }} key={row.key} data-r={r} onClick={() => toggleGroup(row.group)}>
          <span class="dg-toggle" aria-hidden="true">
            {row.open ? '▾' : '▸'}
          </span>
          <span class="dg-label">{row.group}</span>
          <span class="dg-count">{row.members.length}</span>
        </div>,
      );
    } else {
      const t = tasks[row.t];
      const n = maxInstances.get(t.task_id) ?? 0;
      const canOpen = row.kind === 'task' && t.mapped && !!fetchMapped && n > 0;
      nameEls.push(
        <div
          class={`dg-name${isSelRow ? ' dg-sel' : ''}${row.kind === 'inst' ? ' dg-inst' : ''}${activeName ? ' dg-active' : ''}`}
          style={{ top: `${y}px`, paddingLeft: `${8 + row.depth * 14}px` }}
          key={row.key}
          data-r={r}
          title={row.kind === 'task' ? `${t.task_id} · ${t.operator}${t.mapped ? ` · mapped, up to ${n} instances` : ''}` : undefined}
          onClick={() => (canOpen ? toggleMapped(t.task_id) : activate(r, -1))}
        >
          {canOpen ? (
            <span class="dg-toggle" aria-hidden="true">
              {open.has(t.task_id) ? '▾' : '▸'}
            </span>
          ) : (
            <span class="dg-toggle" />
          )}
          <span class="dg-label">{row.kind === 'inst' ? `[${row.mi}]` : t.task_id}</span>
          {row.kind === 'task' && t.mapped && <span class="dg-count" title="mapped instances">[{n}]</span>}
          {row.kind === 'task' && !t.mapped && <span class="dg-op">{t.operator}</span>}
        </div>,
      );
    }
    // The cells of a row in chunks of BLOCK columns, each one HTML string: a chunk is re-parsed only
    // when its text changes (a scroll by one block makes one new chunk per row), and the strings
    // hold nothing but fixed class names, icons and numbers (no data from the DAG).
    const chunks: JSX.Element[] = [];
    for (let cb = c0; cb < c1; cb += BLOCK) {
      let html = '';
      const ce = Math.min(c1, cb + BLOCK);
      for (let c = cb; c < ce; c++) {
        const run = runs[c];
        const { state, pending } = cellState(row, run);
        const st = stateName(state);
        let cls = 'dg-cell state-' + st;
        if (row.kind === 'group') cls += ' dg-gcell';
        if (isSelRow && c === selCol) cls += ' dg-selcell';
        if (focused && active.r === r && active.c === c) cls += ' dg-active';
        if (pending) cls += ' dg-pending';
        html += `<span class="${cls}" data-c="${c}">${pending ? '…' : stateIcon(state)}</span>`;
      }
      chunks.push(<div class="dg-chunk" style={{ left: `${cb * COL_W}px` }} key={cb} dangerouslySetInnerHTML={{ __html: html }} />);
    }
    const t = row.kind === 'group' ? null : tasks[row.t];
    rowEls.push(
      <div
        class="dg-row"
        style={{ top: `${y}px` }}
        key={row.key}
        data-r={r}
        data-task={t ? t.task_id : undefined}
        data-group={row.kind === 'group' ? row.group : undefined}
        data-map-index={row.kind === 'inst' ? row.mi : undefined}
      >
        {chunks}
      </div>,
    );
  }

  // What the active cell is, for screen readers (the grid is one focusable element).
  let activeWords = '';
  if (focused) {
    const { r, c } = active;
    const run = runs[c];
    if (r < 0 && run) activeWords = `run ${run.dag_run_id}, ${stateWords(run.state)}${run.logical_date ? `, ${fmtDate(run.logical_date)}` : ''}. Enter opens the run.`;
    else if (rows[r] && c < 0) activeWords = `${rows[r].kind === 'group' ? 'group ' : 'task '}${rowLabel(rows[r])}`;
    else if (rows[r] && run) {
      const w = cellWords(rows[r], run);
      activeWords = `${w.title}, ${w.lines.join(', ')}`;
    }
  }

  return (
    <div
      class="dg"
      ref={root}
      tabIndex={0}
      role="group"
      aria-roledescription="task grid"
      aria-label={`${data.dag_id}: ${ncols} runs by ${tasks.length} tasks. Arrow keys move, Enter opens.`}
      onKeyDown={onKeyDown}
      onFocus={() => setFocused(true)}
      onBlur={(e) => {
        if (!root.current?.contains(e.relatedTarget as Node | null)) setFocused(false);
      }}
      data-testid="grid-view"
    >
      <div class="dg-scroll" ref={scroller} onScroll={onScroll} onMouseLeave={hideTip}>
        <div class="dg-inner" style={{ width: `${nameW + bodyW}px`, height: `${HEAD_H + bodyH}px` }}>
          <div class="dg-head" style={{ height: `${HEAD_H}px`, width: `${nameW + bodyW}px` }}>
            <div class="dg-corner" style={{ width: `${nameW}px`, height: `${HEAD_H}px` }}>
              <div class="dg-corner-text">
                <strong>Task</strong>
                <span class="muted">
                  {tasks.length.toLocaleString('en-US')} tasks · {ncols.toLocaleString('en-US')}
                  {data.total_runs > ncols ? ` of ${data.total_runs.toLocaleString('en-US')}` : ''} runs
                </span>
                <span class="muted dg-corner-hint">newest run at the left</span>
              </div>
              <div class="dg-resize" onPointerDown={startResize} title="Drag to resize the task column" aria-hidden="true" />
            </div>
            <div class="dg-runs" style={{ left: `${nameW}px`, width: `${bodyW}px` }} onMouseDown={onCellsDown} onMouseUp={onCellsUp} onMouseOver={showTip}>
              {selCol >= 0 && <div class="dg-colmark" style={{ left: `${selCol * COL_W}px` }} />}
              {headCells}
            </div>
          </div>
          <div class="dg-body" style={{ height: `${bodyH}px`, width: `${nameW + bodyW}px` }}>
            <div class="dg-names" style={{ width: `${nameW}px`, height: `${bodyH}px` }}>
              {nameEls}
            </div>
            <div class="dg-cells" style={{ left: `${nameW}px`, width: `${bodyW}px`, height: `${bodyH}px` }} onMouseDown={onCellsDown} onMouseUp={onCellsUp} onMouseOver={showTip}>
              {selCol >= 0 && <div class="dg-colmark" style={{ left: `${selCol * COL_W}px`, height: `${bodyH}px` }} />}
              {selRow >= 0 && <div class="dg-rowmark" style={{ top: `${selRow * ROW_H}px` }} />}
              {rowEls}
            </div>
          </div>
        </div>
      </div>
      <TipCard setter={tipSet} />
      <div class="dg-sr" aria-live="polite">
        {activeWords}
      </div>
    </div>
  );
}
