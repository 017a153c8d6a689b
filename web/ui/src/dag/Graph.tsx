// The graph of a DAG: ELK's layered layout (direction RIGHT), computed in a web worker, drawn on a
// canvas with each task's state as colour and icon (mapped tasks: one node with their counts).
// Wheel or +/- zoom, drag pans, "Fit" shows it all; only what is in view is drawn, and detail
// (text, icons, arrows) fades out when zoomed far out, so thousands of tasks pan smoothly.
// Keyboard: the graph is one tab stop; arrows walk the edges (right: downstream, left: upstream,
// up/down: neighbours in the layer), Enter opens the task, + - 0 zoom and fit; the task in focus
// is announced. Layout time: window.__sluiceGraphLayoutMs (and __sluiceGraphLayout for details).
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { LayoutInput, LayoutResult } from './graphLayout';
import { STATE_ICON, stateIcon, stateName, stateWords, type GridTask } from './types';
import './dag.css';

declare global {
  interface Window {
    __sluiceGraphLayoutMs?: number;
    __sluiceGraphDrawMs?: number;
    __sluiceGraphLayout?: { ms: number; elkMs: number; workerMs: number; nodes: number; edges: number; elkNodes: number; engine: string; cached: boolean };
  }
}

export interface GraphProps {
  tasks: GridTask[];
  states: Record<string, string | null>;
  counts?: Record<string, Record<string, number>>;
  onTask(task_id: string): void;
  selected?: string;
}

const NODE_H = 44;
const STRIPE = 24;
const MIN_W = 120;
const MAX_W = 300;
const FONT = '600 12.5px system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif';
const FONT_SMALL = '11px system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif';
const FONT_ICON = '700 13px system-ui, "DejaVu Sans", sans-serif';
const MAX_SCALE = 2.5;

// --- the worker -------------------------------------------------------------------------------
type Pending = { resolve: (r: LayoutResult) => void; reject: (e: Error) => void };
let worker: Worker | null = null;
let workerBroken = false;
let seq = 0;
const waiting = new Map<number, Pending>();
const cache = new Map<string, LayoutResult>();

function getWorker(): Worker | null {
  if (worker || workerBroken) return worker;
  try {
    worker = new Worker(new URL('./layout.worker.ts', import.meta.url), { type: 'module' });
  } catch {
    workerBroken = true;
    return null;
  }
  worker.onmessage = (e: MessageEvent<{ id: number; result?: LayoutResult; error?: string }>) => {
    const p = waiting.get(e.data.id);
    if (!p) return;
    waiting.delete(e.data.id);
    if (e.data.result) p.resolve(e.data.result);
    else p.reject(new Error(e.data.error ?? 'layout failed'));
  };
  worker.onerror = (e) => {
    e.preventDefault?.();
    const err = new Error(e.message || 'the layout worker failed');
    for (const p of waiting.values()) p.reject(err);
    waiting.clear();
    worker?.terminate();
    worker = null;
  };
  return worker;
}

async function runLayout(input: LayoutInput): Promise<LayoutResult> {
  laidOut = true; // a real layout warms ELK as well as the made-up one would
  const w = getWorker();
  if (!w) throw new Error('this browser refused to start the layout worker');
  const id = ++seq;
  return new Promise<LayoutResult>((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    w.postMessage({ id, input });
  });
}

/**
 * Starts the layout worker ahead of the graph tab and lets ELK run once on a graph of the size
 * class of the DAG: ELK's code lays out a big graph about a third faster once the JIT has seen it.
 * The DAG page calls this, in idle time, for DAGs of over WARM_AT tasks; small DAGs lay out fast
 * enough cold, and their pages start no worker until the graph tab opens.
 */
export const WARM_AT = 1000;
let warmed = false;
let laidOut = false;
export function prewarmLayout(): void {
  if (warmed || laidOut || typeof window === 'undefined') return;
  warmed = true;
  const go = () => {
    if (laidOut) return;
    const w = getWorker();
    if (!w) return;
    const id = ++seq;
    // The worker answers { warmed } (which lands in reject, having no result): tests wait for this.
    const done = () => ((window as unknown as { __sluiceLayoutWarm?: boolean }).__sluiceLayoutWarm = true);
    waiting.set(id, { resolve: done, reject: done });
    w.postMessage({ id, warm: true });
  };
  const ric = (window as unknown as { requestIdleCallback?: (f: () => void, o?: { timeout: number }) => void }).requestIdleCallback;
  if (ric) ric(go, { timeout: 2000 });
  else setTimeout(go, 500);
}

// --- colours from the stylesheet ----------------------------------------------------------------
interface Palette {
  state: Record<string, string>;
  stateFg: Record<string, string>;
  surface: string;
  surface2: string;
  text: string;
  muted: string;
  border: string;
  edge: string;
  accent: string;
  focus: string;
}

function readPalette(el: Element): Palette {
  const cs = getComputedStyle(el);
  const v = (name: string, dflt: string) => cs.getPropertyValue(name).trim() || dflt;
  const state: Record<string, string> = {};
  const stateFg: Record<string, string> = {};
  for (const s of Object.keys(STATE_ICON)) {
    state[s] = v(`--state-${s}`, '#888');
    stateFg[s] = v(`--state-${s}-fg`, '#fff');
  }
  return {
    state,
    stateFg,
    surface: v('--surface', '#fff'),
    surface2: v('--surface-2', '#f0f2f5'),
    text: v('--text', '#1d2433'),
    muted: v('--text-muted', '#545e70'),
    border: v('--border', '#d0d5dd'),
    edge: v('--border-strong', '#98a2b3'),
    accent: v('--accent', '#1d5fa8'),
    focus: v('--focus', '#2f7de1'),
  };
}

function ellipsize(ctx: CanvasRenderingContext2D, text: string, max: number): string {
  if (ctx.measureText(text).width <= max) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + '…').width <= max) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + '…';
}

function countsSummary(c: Record<string, number> | undefined): [string, number][] {
  if (!c) return [];
  return Object.entries(c)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
}

interface View {
  s: number;
  tx: number;
  ty: number;
}

export function Graph(props: GraphProps) {
  const { tasks, states, counts, onTask, selected } = props;
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [layout, setLayout] = useState<LayoutResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [size, setSize] = useState({ w: 800, h: 500 });
  const view = useRef<View>({ s: 1, tx: 0, ty: 0 });
  const fitted = useRef(false);
  const palette = useRef<Palette | null>(null);
  const frame = useRef(0);
  const [focusIdx, setFocusIdx] = useState(-1);
  const [hasFocus, setHasFocus] = useState(false);
  const [hover, setHover] = useState<{ i: number; x: number; y: number } | null>(null);
  const [find, setFind] = useState('');
  const [scaleShown, setScaleShown] = useState(1);

  // --- structure: what the layout depends on (not the states) -------------------------------------
  // A refreshed task list with the same ids and edges keeps the structure (no text measuring).
  const sig = useMemo(() => tasks.map((t) => `${t.task_id}\u0001${t.operator}\u0001${t.mapped ? 1 : 0}\u0001${t.downstream_task_ids.join('\u0001')}`).join('\u0002'), [tasks]);
  const tasksRef = useRef(tasks);
  tasksRef.current = tasks;
  const structure = useMemo(() => {
    const tasks = tasksRef.current;
    const ids = tasks.map((t) => t.task_id);
    const index = new Map<string, number>();
    ids.forEach((id, i) => index.set(id, i));
    const edges: number[] = [];
    tasks.forEach((t, i) => {
      for (const d of t.downstream_task_ids) {
        const j = index.get(d);
        if (j !== undefined) edges.push(i, j);
      }
    });
    const c = document.createElement('canvas').getContext('2d');
    const widths = ids.map((id, i) => {
      let w = id.length * 7.5;
      if (c) {
        c.font = FONT;
        w = c.measureText(id).width;
      }
      const op = tasks[i].operator;
      let wo = 0;
      if (c && op) {
        c.font = FONT_SMALL;
        wo = c.measureText(op).width;
      }
      return Math.round(Math.max(MIN_W, Math.min(MAX_W, STRIPE + 20 + Math.max(w, wo, tasks[i].mapped ? 90 : 0))));
    });
    const key = ids.join('\u0001') + '\u0002' + edges.join(',') + '\u0002' + widths.join(',');
    // Up and downstream lists for keyboard moves and highlighting.
    const up: number[][] = ids.map(() => []);
    const down: number[][] = ids.map(() => []);
    for (let k = 0; k < edges.length; k += 2) {
      down[edges[k]].push(edges[k + 1]);
      up[edges[k + 1]].push(edges[k]);
    }
    return { ids, index, edges, widths, key, up, down };
  }, [sig]);

  useEffect(() => {
    let stale = false;
    const hit = cache.get(structure.key);
    if (hit) {
      setLayout(hit);
      setError(null);
      window.__sluiceGraphLayoutMs = 0;
      window.__sluiceGraphLayout = { ms: 0, elkMs: hit.elkMs, workerMs: hit.totalMs, nodes: structure.ids.length, edges: structure.edges.length / 2, elkNodes: hit.elkNodes, engine: hit.engine, cached: true };
      return;
    }
    if (!structure.ids.length) {
      setLayout(null);
      return;
    }
    setBusy(true);
    const t0 = performance.now();
    runLayout({ ids: structure.ids, widths: structure.widths, height: NODE_H, edges: structure.edges })
      .then((r) => {
        const ms = performance.now() - t0;
        window.__sluiceGraphLayoutMs = Math.round(ms);
        window.__sluiceGraphLayout = { ms: Math.round(ms), elkMs: Math.round(r.elkMs), workerMs: Math.round(r.totalMs), nodes: structure.ids.length, edges: structure.edges.length / 2, elkNodes: r.elkNodes, engine: r.engine, cached: false };
        cache.set(structure.key, r);
        while (cache.size > 4) cache.delete(cache.keys().next().value as string);
        if (stale) return;
        fitted.current = false;
        setLayout(r);
        setError(null);
      })
      .catch((e: Error) => {
        if (!stale) setError(e.message);
      })
      .finally(() => {
        if (!stale) setBusy(false);
      });
    return () => {
      stale = true;
    };
  }, [structure.key]);

  // Edge bounding boxes, a spatial hash of the nodes (hit tests), and the layer of each node.
  const geo = useMemo(() => {
    if (!layout) return null;
    const ne = layout.offs.length - 1;
    const ebox = new Float64Array(ne * 4);
    for (let e = 0; e < ne; e++) {
      let x0 = Infinity;
      let y0 = Infinity;
      let x1 = -Infinity;
      let y1 = -Infinity;
      for (let p = layout.offs[e]; p < layout.offs[e + 1]; p++) {
        const x = layout.points[2 * p];
        const y = layout.points[2 * p + 1];
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
      ebox.set([x0, y0, x1, y1], e * 4);
    }
    const CELL = 256;
    const hash = new Map<number, number[]>();
    const n = layout.boxes.length / 4;
    const b = layout.boxes;
    for (let i = 0; i < n; i++) {
      const cx0 = Math.floor(b[4 * i] / CELL);
      const cx1 = Math.floor((b[4 * i] + b[4 * i + 2]) / CELL);
      const cy0 = Math.floor(b[4 * i + 1] / CELL);
      const cy1 = Math.floor((b[4 * i + 1] + b[4 * i + 3]) / CELL);
      for (let cx = cx0; cx <= cx1; cx++)
        for (let cy = cy0; cy <= cy1; cy++) {
          const k = cx * 100003 + cy;
          const l = hash.get(k);
          if (l) l.push(i);
          else hash.set(k, [i]);
        }
    }
    const blockOf = new Int32Array(n).fill(-1);
    layout.blocks.forEach((bl, k) => {
      if (bl.kind === 'stack') for (const m of bl.members) blockOf[m] = k;
    });
    return { ebox, hash, CELL, blockOf };
  }, [layout]);

  const nodeAt = (wx: number, wy: number): number => {
    if (!layout || !geo) return -1;
    const l = geo.hash.get(Math.floor(wx / geo.CELL) * 100003 + Math.floor(wy / geo.CELL));
    if (!l) return -1;
    const b = layout.boxes;
    for (const i of l) if (wx >= b[4 * i] && wx <= b[4 * i] + b[4 * i + 2] && wy >= b[4 * i + 1] && wy <= b[4 * i + 1] + b[4 * i + 3]) return i;
    return -1;
  };

  // --- view -------------------------------------------------------------------------------------
  const fit = () => {
    if (!layout) return;
    const m = 24;
    const s = Math.min(MAX_SCALE, 1, (size.w - 2 * m) / Math.max(1, layout.width), (size.h - 2 * m) / Math.max(1, layout.height));
    view.current = { s, tx: (size.w - layout.width * s) / 2, ty: (size.h - layout.height * s) / 2 };
    setScaleShown(s);
    schedule();
  };
  const minScale = () => (layout ? Math.min(0.5, 0.5 * Math.min(size.w / Math.max(1, layout.width), size.h / Math.max(1, layout.height))) : 0.1);
  const zoomAt = (factor: number, sx: number, sy: number) => {
    const v = view.current;
    const s = Math.max(minScale(), Math.min(MAX_SCALE, v.s * factor));
    const k = s / v.s;
    view.current = { s, tx: sx - (sx - v.tx) * k, ty: sy - (sy - v.ty) * k };
    setScaleShown(s);
    schedule();
  };
  const centerOn = (i: number, force = false) => {
    if (!layout) return;
    const b = layout.boxes;
    const v = view.current;
    const x = b[4 * i] * v.s + v.tx;
    const y = b[4 * i + 1] * v.s + v.ty;
    const w = b[4 * i + 2] * v.s;
    const h = b[4 * i + 3] * v.s;
    if (!force && x >= 8 && y >= 8 && x + w <= size.w - 8 && y + h <= size.h - 8) return;
    let s = v.s;
    if (force && s < 0.6) s = 0.9;
    view.current = { s, tx: size.w / 2 - (b[4 * i] + b[4 * i + 2] / 2) * s, ty: size.h / 2 - (b[4 * i + 1] + b[4 * i + 3] / 2) * s };
    setScaleShown(s);
    schedule();
  };

  useLayoutEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      const r = el.getBoundingClientRect();
      setSize({ w: Math.max(100, Math.floor(r.width)), h: Math.max(100, Math.floor(r.height)) });
    });
    ro.observe(el);
    palette.current = readPalette(el);
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    const onScheme = () => {
      palette.current = readPalette(el);
      schedule();
    };
    mq?.addEventListener?.('change', onScheme);
    return () => {
      ro.disconnect();
      mq?.removeEventListener?.('change', onScheme);
      if (frame.current) cancelAnimationFrame(frame.current);
    };
  }, []);

  // The first view: all of it when it can be read, else its start (the roots, at the left) at a
  // readable size; a graph of thousands of tasks opens as an overview.
  const initialView = () => {
    if (!layout) return;
    const m = 24;
    const sFit = Math.min(1, (size.w - 2 * m) / Math.max(1, layout.width), (size.h - 2 * m) / Math.max(1, layout.height));
    if (sFit >= 0.55 || structure.ids.length > 600) return fit();
    const s = 0.75;
    view.current = { s, tx: m, ty: layout.height * s < size.h ? (size.h - layout.height * s) / 2 : m };
    setScaleShown(s);
    schedule();
  };

  useEffect(() => {
    if (layout && !fitted.current) {
      fitted.current = true;
      initialView();
      const si = selected ? structure.index.get(selected) : undefined;
      if (si !== undefined && view.current.s < 0.35) centerOn(si, true);
    }
  }, [layout, size.w, size.h]);

  // A selection made elsewhere (the grid, the URL) is brought into view.
  useEffect(() => {
    const si = selected ? structure.index.get(selected) : undefined;
    if (si !== undefined && layout) centerOn(si);
  }, [selected, layout]);

  // --- drawing ----------------------------------------------------------------------------------
  const schedule = () => {
    if (!frame.current) frame.current = requestAnimationFrame(draw);
  };
  const drawRef = useRef<() => void>(() => {});
  const draw = () => {
    frame.current = 0;
    drawRef.current();
  };
  drawRef.current = () => {
    const t0 = performance.now();
    drawScene();
    window.__sluiceGraphDrawMs = Math.round((performance.now() - t0) * 10) / 10;
  };
  const drawScene = () => {
    const cv = canvas.current;
    if (!cv || !layout || !geo) return;
    const pal = palette.current ?? readPalette(cv);
    palette.current = pal;
    const dpr = window.devicePixelRatio || 1;
    const W = size.w;
    const Hh = size.h;
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(Hh * dpr)) {
      cv.width = Math.round(W * dpr);
      cv.height = Math.round(Hh * dpr);
    }
    const ctx = cv.getContext('2d');
    if (!ctx) return;
    const { s, tx, ty } = view.current;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, cv.width, cv.height);
    ctx.setTransform(dpr * s, 0, 0, dpr * s, dpr * tx, dpr * ty);
    // The world rectangle in view.
    const vx0 = -tx / s;
    const vy0 = -ty / s;
    const vx1 = (W - tx) / s;
    const vy1 = (Hh - ty) / s;
    const b = layout.boxes;
    const n = b.length / 4;
    const sel = selected ? structure.index.get(selected) ?? -1 : -1;
    const foc = hasFocus ? focusIdx : -1;
    const hot = sel >= 0 ? sel : foc;
    const hotBlock = hot >= 0 ? -(geo.blockOf[hot] + 1) : 0;

    // Stacks: a frame around tasks that share their upstream and downstream tasks.
    for (const bl of layout.blocks) {
      if (bl.kind !== 'stack' || bl.x > vx1 || bl.y > vy1 || bl.x + bl.w < vx0 || bl.y + bl.h < vy0) continue;
      ctx.fillStyle = pal.surface2;
      ctx.strokeStyle = pal.border;
      ctx.lineWidth = 1 / s;
      ctx.beginPath();
      ctx.roundRect(bl.x, bl.y, bl.w, bl.h, 8);
      ctx.fill();
      ctx.setLineDash([5 / s, 4 / s]);
      ctx.stroke();
      ctx.setLineDash([]);
      if (bl.members.length >= 6 && 11 * s >= 7) {
        ctx.fillStyle = pal.muted;
        ctx.font = FONT_SMALL;
        ctx.textBaseline = 'middle';
        ctx.fillText(`${bl.members.length.toLocaleString('en-US')} tasks with the same upstream and downstream`, bl.x + 12, bl.y + 16);
      }
    }

    // Edges: one path for all, then the highlighted ones over it.
    const ne = layout.offs.length - 1;
    const P = layout.points;
    const arrows = s >= 0.25;
    const drawEdge = (e: number) => {
      const p0 = layout.offs[e];
      const p1 = layout.offs[e + 1];
      ctx.moveTo(P[2 * p0], P[2 * p0 + 1]);
      for (let p = p0 + 1; p < p1; p++) ctx.lineTo(P[2 * p], P[2 * p + 1]);
    };
    const drawArrow = (e: number) => {
      const p1 = layout.offs[e + 1] - 1;
      const p0 = p1 - 1;
      const x = P[2 * p1];
      const y = P[2 * p1 + 1];
      const a = Math.atan2(y - P[2 * p0 + 1], x - P[2 * p0]);
      const L = Math.min(7, 9 / s);
      ctx.moveTo(x, y);
      ctx.lineTo(x - L * Math.cos(a - 0.45), y - L * Math.sin(a - 0.45));
      ctx.lineTo(x - L * Math.cos(a + 0.45), y - L * Math.sin(a + 0.45));
      ctx.closePath();
    };
    const eb = geo.ebox;
    const hotEdges: number[] = [];
    ctx.strokeStyle = pal.edge;
    ctx.fillStyle = pal.edge;
    // Line widths in screen pixels, whatever the zoom.
    const px = (w: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, w * s)) / s;
    ctx.lineWidth = px(1.25, 1, 1.6);
    ctx.lineJoin = 'round';
    ctx.beginPath();
    const visibleEdges: number[] = [];
    for (let e = 0; e < ne; e++) {
      if (eb[4 * e] > vx1 || eb[4 * e + 1] > vy1 || eb[4 * e + 2] < vx0 || eb[4 * e + 3] < vy0) continue;
      const a = layout.src[e];
      const d = layout.dst[e];
      if (hot >= 0 && (a === hot || d === hot || (hotBlock < 0 && (a === hotBlock || d === hotBlock)))) {
        hotEdges.push(e);
        continue;
      }
      drawEdge(e);
      visibleEdges.push(e);
    }
    ctx.stroke();
    if (arrows) {
      ctx.beginPath();
      for (const e of visibleEdges) drawArrow(e);
      ctx.fill();
    }
    if (hotEdges.length) {
      ctx.strokeStyle = pal.accent;
      ctx.fillStyle = pal.accent;
      ctx.lineWidth = px(2.25, 2, 3);
      ctx.beginPath();
      for (const e of hotEdges) drawEdge(e);
      ctx.stroke();
      ctx.beginPath();
      for (const e of hotEdges) drawArrow(e);
      ctx.fill();
    }

    // Nodes. Far out: squares in their state's colour, batched per colour.
    const screenH = NODE_H * s;
    const visible: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = b[4 * i];
      const y = b[4 * i + 1];
      if (x > vx1 || y > vy1 || x + b[4 * i + 2] < vx0 || y + b[4 * i + 3] < vy0) continue;
      visible.push(i);
    }
    const stOf = (i: number) => stateName(states[structure.ids[i]] ?? null);
    if (screenH < 9) {
      const byState = new Map<string, number[]>();
      for (const i of visible) {
        const st = stOf(i);
        const l = byState.get(st);
        if (l) l.push(i);
        else byState.set(st, [i]);
      }
      for (const [st, list] of byState) {
        ctx.fillStyle = st === 'none' ? pal.border : pal.state[st];
        ctx.beginPath();
        for (const i of list) ctx.rect(b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]);
        ctx.fill();
      }
    } else {
      const detail = screenH >= 22;
      for (const i of visible) {
        const x = b[4 * i];
        const y = b[4 * i + 1];
        const w = b[4 * i + 2];
        const h = b[4 * i + 3];
        const st = stOf(i);
        const col = pal.state[st];
        const task = tasks[i];
        ctx.strokeStyle = st === 'none' ? pal.edge : col;
        if (task.mapped) {
          // A mapped task: a second card behind it, as a stack of cards.
          ctx.beginPath();
          ctx.roundRect(x + 4, y - 4, w, h, 6);
          ctx.fillStyle = pal.surface;
          ctx.fill();
          ctx.lineWidth = px(1, 1, 1.5);
          ctx.stroke();
        }
        ctx.beginPath();
        ctx.roundRect(x, y, w, h, 6);
        ctx.fillStyle = pal.surface;
        ctx.fill();
        ctx.lineWidth = px(1.5, 1, 2);
        ctx.stroke();
        ctx.beginPath();
        ctx.roundRect(x, y, STRIPE, h, [6, 0, 0, 6]);
        ctx.fillStyle = st === 'none' ? pal.surface2 : col;
        ctx.fill();
        if (!detail) continue;
        ctx.fillStyle = st === 'none' ? pal.muted : pal.stateFg[st];
        ctx.font = FONT_ICON;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText(stateIcon(states[task.task_id] ?? null), x + STRIPE / 2, y + h / 2 + 0.5);
        ctx.textAlign = 'left';
        ctx.font = FONT;
        ctx.fillStyle = pal.text;
        const tw = w - STRIPE - 16;
        ctx.fillText(ellipsize(ctx, task.task_id, tw), x + STRIPE + 8, y + 15);
        ctx.font = FONT_SMALL;
        const c = task.mapped ? countsSummary(counts?.[task.task_id]) : [];
        if (task.mapped && c.length) {
          let cx = x + STRIPE + 8;
          for (const [cs, num] of c) {
            const k = stateName(cs === 'none' ? null : cs);
            const label = `${STATE_ICON[k]}${num}`;
            const lw = ctx.measureText(label).width;
            if (cx + lw > x + w - 6) {
              ctx.fillStyle = pal.muted;
              ctx.fillText('…', cx, y + 32);
              break;
            }
            ctx.fillStyle = k === 'none' ? pal.muted : pal.state[k];
            ctx.fillText(label, cx, y + 32);
            cx += lw + 7;
          }
        } else {
          ctx.fillStyle = pal.muted;
          ctx.fillText(ellipsize(ctx, task.mapped ? `${task.operator} · mapped` : task.operator, tw), x + STRIPE + 8, y + 32);
        }
      }
    }
    // Selection and keyboard focus rings.
    const ring = (i: number, color: string, width: number, pad: number) => {
      ctx.beginPath();
      ctx.roundRect(b[4 * i] - pad / s, b[4 * i + 1] - pad / s, b[4 * i + 2] + (2 * pad) / s, b[4 * i + 3] + (2 * pad) / s, 8);
      ctx.lineWidth = width / s;
      ctx.strokeStyle = color;
      ctx.stroke();
    };
    if (sel >= 0) ring(sel, pal.accent, 3, 3);
    if (foc >= 0) {
      ctx.setLineDash([4 / s, 3 / s]);
      ring(foc, pal.focus, 2, 6);
      ctx.setLineDash([]);
    }
  };

  useEffect(() => {
    schedule();
  });

  // --- pointer ----------------------------------------------------------------------------------
  const drag = useRef<{ x: number; y: number; tx: number; ty: number; moved: boolean; id: number } | null>(null);
  const toWorld = (e: { clientX: number; clientY: number }) => {
    const r = canvas.current!.getBoundingClientRect();
    const sx = e.clientX - r.left;
    const sy = e.clientY - r.top;
    const v = view.current;
    return { sx, sy, wx: (sx - v.tx) / v.s, wy: (sy - v.ty) / v.s };
  };
  const onPointerDown = (e: PointerEvent) => {
    if (e.button !== 0) return;
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY, tx: view.current.tx, ty: view.current.ty, moved: false, id: e.pointerId };
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (d) {
      const dx = e.clientX - d.x;
      const dy = e.clientY - d.y;
      if (!d.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      d.moved = true;
      view.current = { ...view.current, tx: d.tx + dx, ty: d.ty + dy };
      if (hover) setHover(null);
      schedule();
      return;
    }
    const p = toWorld(e);
    const i = nodeAt(p.wx, p.wy);
    if (i < 0) {
      if (hover) setHover(null);
    } else if (!hover || hover.i !== i) setHover({ i, x: p.sx, y: p.sy });
  };
  const onPointerUp = (e: PointerEvent) => {
    const d = drag.current;
    drag.current = null;
    if (!d || d.moved) return;
    const p = toWorld(e);
    const i = nodeAt(p.wx, p.wy);
    if (i >= 0) {
      setFocusIdx(i);
      onTask(structure.ids[i]);
    }
  };
  const onWheel = (e: WheelEvent) => {
    e.preventDefault();
    const p = toWorld(e);
    if (e.ctrlKey || e.deltaMode !== 0 || Math.abs(e.deltaY) >= Math.abs(e.deltaX)) zoomAt(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0018)), p.sx, p.sy);
    else {
      view.current = { ...view.current, tx: view.current.tx - e.deltaX };
      schedule();
    }
  };
  // Wheel listeners must not be passive to stop the page from scrolling.
  useEffect(() => {
    const cv = canvas.current;
    if (!cv) return;
    const h = (e: WheelEvent) => onWheelRef.current(e);
    cv.addEventListener('wheel', h, { passive: false });
    return () => cv.removeEventListener('wheel', h);
  }, [layout !== null]);
  const onWheelRef = useRef(onWheel);
  onWheelRef.current = onWheel;

  // --- keyboard ---------------------------------------------------------------------------------
  const neighbour = (i: number, dir: 'up' | 'down'): number => {
    if (!layout) return i;
    const b = layout.boxes;
    const cx = b[4 * i] + b[4 * i + 2] / 2;
    const cy = b[4 * i + 1] + b[4 * i + 3] / 2;
    let best = -1;
    let bestD = Infinity;
    const n = b.length / 4;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const dy = b[4 * j + 1] + b[4 * j + 3] / 2 - cy;
      if (dir === 'up' ? dy >= -1 : dy <= 1) continue;
      const dx = Math.abs(b[4 * j] + b[4 * j + 2] / 2 - cx);
      const d = Math.abs(dy) + dx * 3;
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    return best < 0 ? i : best;
  };
  const closestOf = (i: number, list: number[]): number => {
    if (!list.length || !layout) return i;
    const b = layout.boxes;
    const cy = b[4 * i + 1];
    let best = list[0];
    for (const j of list) if (Math.abs(b[4 * j + 1] - cy) < Math.abs(b[4 * best + 1] - cy)) best = j;
    return best;
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if ((e.target as HTMLElement).tagName === 'INPUT') return;
    let f = focusIdx >= 0 ? focusIdx : selected ? structure.index.get(selected) ?? -1 : -1;
    const start = () => {
      // The first task: a root near the top left.
      let best = 0;
      if (layout) for (let j = 1; j < structure.ids.length; j++) if (layout.boxes[4 * j] + layout.boxes[4 * j + 1] < layout.boxes[4 * best] + layout.boxes[4 * best + 1]) best = j;
      return best;
    };
    switch (e.key) {
      case 'ArrowRight':
        f = f < 0 ? start() : closestOf(f, structure.down[f]);
        break;
      case 'ArrowLeft':
        f = f < 0 ? start() : closestOf(f, structure.up[f]);
        break;
      case 'ArrowUp':
        f = f < 0 ? start() : neighbour(f, 'up');
        break;
      case 'ArrowDown':
        f = f < 0 ? start() : neighbour(f, 'down');
        break;
      case 'Enter':
      case ' ':
        if (f >= 0) {
          e.preventDefault();
          onTask(structure.ids[f]);
        }
        return;
      case '+':
      case '=':
        zoomAt(1.25, size.w / 2, size.h / 2);
        e.preventDefault();
        return;
      case '-':
      case '_':
        zoomAt(0.8, size.w / 2, size.h / 2);
        e.preventDefault();
        return;
      case '0':
        fit();
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    setFocusIdx(f);
    if (f >= 0) centerOn(f);
  };

  const findTask = (q: string) => {
    const s = q.trim().toLowerCase();
    if (!s) return;
    let i = structure.ids.findIndex((id) => id.toLowerCase() === s);
    if (i < 0) i = structure.ids.findIndex((id) => id.toLowerCase().includes(s));
    if (i < 0) return;
    setFocusIdx(i);
    centerOn(i, true);
    wrap.current?.focus();
    setHasFocus(true);
  };

  // --- words ------------------------------------------------------------------------------------
  const summary = useMemo(() => {
    const c: Record<string, number> = {};
    for (const t of tasks) {
      const s = stateName(states[t.task_id] ?? null);
      c[s] = (c[s] ?? 0) + 1;
    }
    return Object.entries(c)
      .sort((a, b) => b[1] - a[1])
      .map(([s, n]) => `${n} ${stateWords(s === 'none' ? null : s)}`)
      .join(', ');
  }, [tasks, states]);

  const describe = (i: number): string => {
    const t = tasks[i];
    const st = states[t.task_id] ?? null;
    const up = structure.up[i].length;
    const down = structure.down[i].length;
    const c = t.mapped ? countsSummary(counts?.[t.task_id]) : [];
    return `${t.task_id}: ${stateWords(st)}${c.length ? ` (${c.map(([s, n]) => `${n} ${stateWords(s)}`).join(', ')})` : ''}, ${t.operator}, ${up} upstream, ${down} downstream`;
  };

  const hoverTask = hover ? tasks[hover.i] : null;
  return (
    <div class="dgr" data-testid="graph-view">
      <div class="dgr-bar" role="toolbar" aria-label="Graph view">
        <button type="button" class="btn btn-small" onClick={() => zoomAt(0.8, size.w / 2, size.h / 2)} aria-label="Zoom out" title="Zoom out (-)">
          −
        </button>
        <span class="dgr-zoom" aria-live="off">
          {Math.round(scaleShown * 100)}%
        </span>
        <button type="button" class="btn btn-small" onClick={() => zoomAt(1.25, size.w / 2, size.h / 2)} aria-label="Zoom in" title="Zoom in (+)">
          +
        </button>
        <button type="button" class="btn btn-small" onClick={fit} title="Fit the graph to the view (0)">
          Fit
        </button>
        <form
          class="dgr-find"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            findTask(find);
          }}
        >
          <input type="search" list="dgr-task-ids" placeholder="Find a task" aria-label="Find a task in the graph" value={find} onInput={(e) => setFind((e.target as HTMLInputElement).value)} />
          {tasks.length <= 2000 && (
            <datalist id="dgr-task-ids">
              {tasks.map((t) => (
                <option value={t.task_id} />
              ))}
            </datalist>
          )}
        </form>
        <span class="dgr-info muted">
          {busy ? `Laying out ${tasks.length.toLocaleString('en-US')} tasks…` : layout ? `${tasks.length.toLocaleString('en-US')} tasks` : ''}
        </span>
      </div>
      <div
        class="dgr-canvas"
        ref={wrap}
        tabIndex={0}
        role="application"
        aria-roledescription="task graph"
        aria-label={`Graph of ${tasks.length} tasks: ${summary}. Arrow keys walk the edges, Enter opens the task.`}
        onKeyDown={onKeyDown}
        onFocus={() => setHasFocus(true)}
        onBlur={() => setHasFocus(false)}
      >
        {error && (
          <div class="dgr-msg dgr-error" role="alert">
            The graph could not be laid out: {error}
          </div>
        )}
        {!layout && !error && <div class="dgr-msg">{tasks.length ? 'Laying out the graph…' : 'No tasks.'}</div>}
        <canvas
          ref={canvas}
          style={{ width: `${size.w}px`, height: `${size.h}px`, cursor: hover ? 'pointer' : drag.current?.moved ? 'grabbing' : 'grab' }}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerLeave={() => hover && setHover(null)}
          aria-hidden="true"
        />
        {hoverTask && hover && (
          <div class="dg-tip" style={{ left: `${Math.min(hover.x + 14, size.w - 280)}px`, top: `${hover.y + 14}px` }} role="tooltip">
            <div class="dg-tip-title">
              <span class={`dg-tip-state state-${stateName(states[hoverTask.task_id] ?? null)}`} aria-hidden="true">
                {stateIcon(states[hoverTask.task_id] ?? null)}
              </span>
              {hoverTask.task_id}
            </div>
            <div class="dg-tip-line">{stateWords(states[hoverTask.task_id] ?? null)}</div>
            <div class="dg-tip-line">
              {hoverTask.operator}
              {hoverTask.trigger_rule && hoverTask.trigger_rule !== 'all_success' ? ` · trigger ${hoverTask.trigger_rule}` : ''}
            </div>
            {hoverTask.mapped && (
              <div class="dg-tip-line">
                mapped:{' '}
                {countsSummary(counts?.[hoverTask.task_id])
                  .map(([s, n]) => `${n} ${stateWords(s)}`)
                  .join(', ') || 'not expanded yet'}
              </div>
            )}
            <div class="dg-tip-line">
              {structure.up[hover.i].length} upstream · {structure.down[hover.i].length} downstream
            </div>
          </div>
        )}
        <div class="dg-sr" aria-live="polite">
          {hasFocus && focusIdx >= 0 && focusIdx < tasks.length ? describe(focusIdx) : ''}
        </div>
      </div>
    </div>
  );
}
