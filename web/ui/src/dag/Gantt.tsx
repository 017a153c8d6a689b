// The Gantt chart of a run: one row per task instance (a mapped task's instances each have their
// own), one bar per try, the time spent queued (queued -> start) hatched apart from the running
// time (start -> end, or now while it runs). A time axis with clock times, a line at "now",
// tooltips, and virtualised rows (only those in view are in the DOM) for runs of any size.
// Keyboard: rows are buttons; arrows move between them, Enter opens the task instance.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import { fmtDate, fmtDuration } from '../format';
import { stateIcon, stateName, stateWords, type TaskInstance } from './types';
import { snappedRange } from './virtual';
import './dag.css';

const ROW_H = 26;
const AXIS_H = 34;
const NAME_W = 260;
const BLOCK = 10;
const STEPS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

export interface GanttProps {
  tis: TaskInstance[];
  onTask(task_id: string, map_index: number): void;
}

interface Bar {
  ti: TaskInstance;
  q0: number | null; // queued from
  s0: number | null; // started
  e0: number | null; // ended (null: still running)
}

interface GRow {
  key: string;
  task_id: string;
  map_index: number;
  bars: Bar[];
  first: number;
  state: string | null;
}

const ACTIVE = new Set(['running', 'queued', 'scheduled', 'up_for_retry', 'up_for_reschedule', 'restarting', 'deferred']);

function t(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const v = Date.parse(iso);
  return Number.isNaN(v) ? null : v;
}

const pad2 = (n: number) => String(n).padStart(2, '0');
function clock(ms: number, withSeconds: boolean): string {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}${withSeconds ? ':' + pad2(d.getSeconds()) : ''}`;
}

export function Gantt(props: GanttProps) {
  const { tis, onTask } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ y: 0, w: 900, h: 500 });
  const [now, setNow] = useState(() => Date.now());
  const [focusRow, setFocusRow] = useState(-1);
  const [tip, setTip] = useState<{ bar: Bar; x: number; y: number } | null>(null);
  const focusWanted = useRef(false);

  const rows = useMemo(() => {
    const m = new Map<string, GRow>();
    for (const ti of tis) {
      const key = ti.task_id + '\u0000' + ti.map_index;
      let r = m.get(key);
      if (!r) {
        r = { key, task_id: ti.task_id, map_index: ti.map_index, bars: [], first: Infinity, state: null };
        m.set(key, r);
      }
      const q0 = t(ti.queued_when);
      const s0 = t(ti.start_date);
      const e0 = t(ti.end_date);
      r.bars.push({ ti, q0, s0, e0 });
      const f = q0 ?? s0;
      if (f !== null && f < r.first) r.first = f;
    }
    const list = [...m.values()];
    for (const r of list) {
      r.bars.sort((a, b) => a.ti.try_number - b.ti.try_number);
      r.state = r.bars[r.bars.length - 1].ti.state;
    }
    // In the order they began; those not begun keep their order, at the end.
    list.forEach((r, i) => ((r as GRow & { i: number }).i = i));
    list.sort((a, b) => (a.first === b.first ? (a as GRow & { i: number }).i - (b as GRow & { i: number }).i : a.first - b.first));
    return list;
  }, [tis]);

  const live = useMemo(() => tis.some((ti) => ti.state !== null && ACTIVE.has(ti.state)), [tis]);
  useEffect(() => {
    if (!live) return;
    setNow(Date.now());
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [live]);

  const range = useMemo(() => {
    let a = Infinity;
    let b = -Infinity;
    for (const r of rows)
      for (const bar of r.bars) {
        for (const v of [bar.q0, bar.s0, bar.e0]) {
          if (v === null) continue;
          if (v < a) a = v;
          if (v > b) b = v;
        }
        const st = bar.ti.state;
        if ((bar.s0 !== null && bar.e0 === null) || (bar.q0 !== null && bar.s0 === null && st !== null && ACTIVE.has(st))) b = Math.max(b, now);
      }
    if (!Number.isFinite(a)) return null;
    if (b <= a) b = a + 1000;
    return { a, b };
  }, [rows, now]);

  const measure = () => {
    const el = scroller.current;
    if (!el) return;
    setView((v) => (v.y === el.scrollTop && v.w === el.clientWidth && v.h === el.clientHeight ? v : { y: el.scrollTop, w: el.clientWidth, h: el.clientHeight }));
  };
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [range !== null]);

  useLayoutEffect(() => {
    if (!focusWanted.current) return;
    focusWanted.current = false;
    const el = scroller.current?.querySelector(`[data-row="${focusRow}"]`) as HTMLElement | null;
    el?.focus({ preventScroll: true });
  });

  if (!range) {
    return (
      <div class="gantt gantt-empty" data-testid="gantt-view">
        <div class="dgr-msg">No task instance of this run has been queued or started yet.</div>
      </div>
    );
  }

  const chartW = Math.max(200, view.w - NAME_W - 16);
  const span = range.b - range.a;
  const px = (ms: number) => ((ms - range.a) / span) * chartW;
  // Ticks: the smallest step that leaves ~90 px between labels.
  const stepS = STEPS.find((s) => (s * 1000 * chartW) / span >= 90) ?? STEPS[STEPS.length - 1];
  const step = stepS * 1000;
  // Ticks at round clock times (in the browser's zone); under a second, at round offsets from the start.
  const tz = stepS < 1 ? -range.a : new Date(range.a).getTimezoneOffset() * 60000;
  const firstTick = Math.ceil((range.a - tz) / step) * step + tz;
  const ticks: JSX.Element[] = [];
  for (let v = firstTick; v <= range.b; v += step) {
    const x = px(v);
    ticks.push(
      <div class="gantt-tick" style={{ left: `${x}px` }} key={v}>
        <span>{stepS >= 86400 ? new Date(v).toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) : stepS < 1 ? `+${Math.round(v - range.a)} ms` : clock(v, stepS < 60)}</span>
      </div>,
    );
  }
  const gridLines: JSX.Element[] = [];
  for (let v = firstTick; v <= range.b; v += step) gridLines.push(<div class="gantt-gridline" style={{ left: `${px(v)}px` }} key={v} />);

  const [r0, r1] = snappedRange(view.y, view.h - AXIS_H, ROW_H, rows.length, BLOCK);

  const barWords = (row: GRow, bar: Bar): string[] => {
    const ti = bar.ti;
    const out = [`try ${ti.try_number}: ${stateWords(ti.state)}`];
    if (bar.q0 !== null) out.push(`queued ${fmtDate(ti.queued_when)}`);
    if (bar.s0 !== null) out.push(`started ${fmtDate(ti.start_date)}`);
    if (bar.e0 !== null) out.push(`ended ${fmtDate(ti.end_date)}`);
    if (bar.q0 !== null && bar.s0 !== null) out.push(`waited ${fmtDuration((bar.s0 - bar.q0) / 1000)} in the queue`);
    if (bar.s0 !== null) out.push(`${bar.e0 === null ? 'running for' : 'ran'} ${fmtDuration(((bar.e0 ?? now) - bar.s0) / 1000)}`);
    void row;
    return out;
  };

  const rowEls: JSX.Element[] = [];
  for (let i = r0; i < r1; i++) {
    const row = rows[i];
    const st = stateName(row.state);
    const label = row.map_index >= 0 ? `${row.task_id} [${row.map_index}]` : row.task_id;
    const bars: JSX.Element[] = [];
    for (const bar of row.bars) {
      const bst = stateName(bar.ti.state);
      const active = bar.ti.state !== null && ACTIVE.has(bar.ti.state);
      if (bar.q0 !== null) {
        const qEnd = bar.s0 ?? (active && bar.e0 === null ? now : bar.e0 ?? bar.q0);
        const x = px(bar.q0);
        const w = Math.max(1, px(qEnd) - x);
        bars.push(<span class="gantt-queued" style={{ left: `${x}px`, width: `${w}px` }} data-try={bar.ti.try_number} />);
      }
      if (bar.s0 !== null) {
        const end = bar.e0 ?? now;
        const x = px(bar.s0);
        const w = Math.max(2, px(end) - x);
        bars.push(
          <span class={`gantt-run state-${bst}${bar.e0 === null ? ' gantt-open' : ''}`} style={{ left: `${x}px`, width: `${w}px` }} data-try={bar.ti.try_number}>
            {w >= 16 ? stateIcon(bar.ti.state) : ''}
          </span>,
        );
      }
    }
    const last = row.bars[row.bars.length - 1];
    const words = `${label}: ${stateWords(row.state)}. ${barWords(row, last).join(', ')}`;
    rowEls.push(
      <button
        type="button"
        class={`gantt-row${i === focusRow ? ' focused' : ''}`}
        style={{ top: `${AXIS_H + i * ROW_H}px` }}
        key={row.key}
        data-row={i}
        data-task={row.task_id}
        data-map-index={row.map_index}
        tabIndex={i === Math.max(0, focusRow) || (focusRow < 0 && i === r0) ? 0 : -1}
        aria-label={words}
        onClick={() => onTask(row.task_id, row.map_index)}
        onFocus={() => setFocusRow(i)}
        onMouseMove={(e) => {
          const el = scroller.current;
          if (!el) return;
          const box = el.getBoundingClientRect();
          const x = e.clientX - box.left - NAME_W;
          const ms = range.a + (x / chartW) * span;
          // The try under the pointer (the nearest in time).
          let best = row.bars[row.bars.length - 1];
          let bd = Infinity;
          for (const bar of row.bars) {
            const a = bar.q0 ?? bar.s0 ?? 0;
            const b = bar.e0 ?? now;
            const d = ms < a ? a - ms : ms > b ? ms - b : 0;
            if (d < bd) {
              bd = d;
              best = bar;
            }
          }
          setTip({ bar: best, x: e.clientX - box.left, y: e.clientY - box.top + el.scrollTop });
        }}
        onMouseLeave={() => setTip(null)}
      >
        <span class="gantt-name" style={{ width: `${NAME_W}px` }}>
          <span class={`gantt-state state-${st}`} aria-hidden="true">
            {stateIcon(row.state)}
          </span>
          <span class="gantt-label">{label}</span>
          {row.bars.length > 1 && <span class="gantt-tries">{row.bars.length} tries</span>}
        </span>
        <span class="gantt-track" style={{ left: `${NAME_W}px`, width: `${chartW}px` }}>
          {bars}
        </span>
      </button>,
    );
  }

  const onKeyDown = (e: KeyboardEvent) => {
    const el = scroller.current;
    if (!el || !rows.length) return;
    let i = focusRow < 0 ? 0 : focusRow;
    const page = Math.max(1, Math.floor((view.h - AXIS_H) / ROW_H) - 1);
    if (e.key === 'ArrowDown') i = Math.min(rows.length - 1, i + 1);
    else if (e.key === 'ArrowUp') i = Math.max(0, i - 1);
    else if (e.key === 'PageDown') i = Math.min(rows.length - 1, i + page);
    else if (e.key === 'PageUp') i = Math.max(0, i - page);
    else if (e.key === 'Home') i = 0;
    else if (e.key === 'End') i = rows.length - 1;
    else return;
    e.preventDefault();
    const top = i * ROW_H;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_H > el.scrollTop + el.clientHeight - AXIS_H) el.scrollTop = top + ROW_H - (el.clientHeight - AXIS_H);
    focusWanted.current = true;
    setFocusRow(i);
    measure();
  };

  const nowX = live ? px(now) : -1;
  const tipBar = tip?.bar;
  const tipRow = tipBar ? rows.find((r) => r.bars.includes(tipBar)) : undefined;
  return (
    <div class="gantt" data-testid="gantt-view">
      <div class="gantt-scroll" ref={scroller} onScroll={measure} onKeyDown={onKeyDown}>
        <div class="gantt-inner" style={{ height: `${AXIS_H + rows.length * ROW_H}px` }}>
          <div class="gantt-axis" style={{ height: `${AXIS_H}px` }}>
            <div class="gantt-axis-name" style={{ width: `${NAME_W}px` }}>
              <strong>Task</strong>
              <span class="muted">
                {rows.length.toLocaleString('en-US')} instances · {fmtDuration(span / 1000)}
              </span>
            </div>
            <div class="gantt-ticks" style={{ left: `${NAME_W}px`, width: `${chartW}px` }}>
              {ticks}
              {nowX >= 0 && (
                <div class="gantt-now-label" style={{ left: `${nowX}px`, transform: nowX > chartW - 20 ? 'translateX(-100%)' : undefined }}>
                  now
                </div>
              )}
            </div>
          </div>
          <div class="gantt-lines" style={{ left: `${NAME_W}px`, width: `${chartW}px`, top: `${AXIS_H}px`, height: `${rows.length * ROW_H}px` }} aria-hidden="true">
            {gridLines}
            {nowX >= 0 && <div class="gantt-now" style={{ left: `${nowX}px` }} />}
          </div>
          {rowEls}
        </div>
        {tip && tipBar && tipRow && (
          <div class="dg-tip" style={{ left: `${Math.min(tip.x + 14, view.w - 300)}px`, top: `${tip.y + 16}px` }} role="tooltip">
            <div class="dg-tip-title">
              <span class={`dg-tip-state state-${stateName(tipBar.ti.state)}`} aria-hidden="true">
                {stateIcon(tipBar.ti.state)}
              </span>
              {tipRow.map_index >= 0 ? `${tipRow.task_id} [${tipRow.map_index}]` : tipRow.task_id}
            </div>
            {barWords(tipRow, tipBar).map((l) => (
              <div class="dg-tip-line">{l}</div>
            ))}
          </div>
        )}
      </div>
      <div class="gantt-legend muted small">
        <span class="gantt-legend-item">
          <span class="gantt-queued gantt-swatch" /> queued
        </span>
        <span class="gantt-legend-item">
          <span class="gantt-run gantt-swatch state-running" /> running / ran (state colour and icon)
        </span>
      </div>
    </div>
  );
}
