// The grid of a DAG (GET /dags/{id}/grid): runs x tasks, newest run first, older pages appended
// on demand. task_instance events are applied in place (batched per animation frame, no request);
// a run the page does not know yet, a mapped instance, or a run's end fetch the newest runs again,
// at most once a second.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, qs, seg } from '../api';
import type { GridData } from '../dag/types';
import { throttle, useLive, usePollWhileDown, type RunEvent, type TiEvent } from '../live';

type GridRun = GridData['runs'][number];

export interface GridState {
  data: GridData | null;
  error: unknown;
  loadingOlder: boolean;
  reload: () => void;
  loadOlder: () => void;
  /** The newest runs again (after a trigger, clear or mark). */
  refresh: () => void;
}

function sameTasks(a: GridData, b: GridData): boolean {
  if (a.tasks.length !== b.tasks.length) return false;
  for (let i = 0; i < a.tasks.length; i++) if (a.tasks[i].task_id !== b.tasks[i].task_id) return false;
  return true;
}

/** The newest runs `top` merged over the runs loaded before (older pages stay). */
function merge(old: GridData | null, top: GridData, limit: number): GridData {
  if (!old || !sameTasks(old, top)) return top;
  const ids = new Set(top.runs.map((r) => r.dag_run_id));
  const last = top.runs[top.runs.length - 1];
  let rest: GridRun[] = [];
  if (top.runs.length >= limit && last) {
    const i = old.runs.findIndex((r) => r.dag_run_id === last.dag_run_id);
    rest = (i >= 0 ? old.runs.slice(i + 1) : old.runs.filter((r) => !ids.has(r.dag_run_id))).filter((r) => !ids.has(r.dag_run_id));
  }
  const runs = top.runs.concat(rest);
  return { ...top, runs, older: rest.length ? old.older : top.older };
}

export function useGrid(dag_id: string, limit: number): GridState {
  const [data, setData] = useState<GridData | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [gen, setGen] = useState(0);
  const dataRef = useRef<GridData | null>(null);
  dataRef.current = data;

  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    api
      .get<GridData>(`/dags/${seg(dag_id)}/grid${qs({ limit })}`, { signal: ctl.signal })
      .then((d) => setData(d))
      .catch((err) => {
        if ((err as Error).name !== 'AbortError') setError(err);
      });
    return () => ctl.abort();
  }, [dag_id, limit, gen]);

  // How many of the newest runs a refresh fetches: enough to reach the runs events named.
  const want = useRef(0);
  // Runs that events named but the page does not show: a refresh looks for each once; one that is
  // not among the newest runs then (an old run, below the loaded pages) is left alone after that,
  // so that its events cost no request.
  const unknown = useRef(new Set<string>());
  const hidden = useRef(new Set<string>());
  const refresh = useMemo(
    () =>
      throttle(async () => {
        const n = Math.min(1000, Math.max(limit, want.current));
        want.current = 0;
        const looking = [...unknown.current];
        unknown.current.clear();
        try {
          const top = await api.get<GridData>(`/dags/${seg(dag_id)}/grid${qs({ limit: n })}`);
          setData((old) => {
            const d = merge(old, top, n);
            const shown = new Set(d.runs.map((r) => r.dag_run_id));
            for (const id of looking) if (!shown.has(id)) hidden.current.add(id);
            return d;
          });
          setError(null);
        } catch {
          /* shown data stays; the next event or resync tries again */
        }
      }, 1000),
    [dag_id, limit],
  );
  /** A refresh for a run the page does not show, unless it was looked for before. */
  const lookFor = (run_id: string) => {
    if (hidden.current.has(run_id)) return;
    unknown.current.add(run_id);
    want.current = Math.max(want.current, limit);
    refresh();
  };
  useEffect(() => () => refresh.cancel(), [refresh]);

  // Events gathered and applied once per frame.
  const pending = useRef<TiEvent[]>([]);
  const frame = useRef(0);
  const index = useMemo(() => {
    const runs = new Map<string, number>();
    const tasks = new Map<string, number>();
    data?.runs.forEach((r, i) => runs.set(r.dag_run_id, i));
    data?.tasks.forEach((t, i) => tasks.set(t.task_id, i));
    return { runs, tasks };
  }, [data]);
  const indexRef = useRef(index);
  indexRef.current = index;

  const applyPending = () => {
    frame.current = 0;
    const evs = pending.current;
    pending.current = [];
    if (!evs.length) return;
    setData((old) => {
      if (!old) return old;
      const { runs: ri, tasks: ti } = indexRef.current;
      let runs: GridRun[] | null = null;
      const touched = new Map<number, GridRun>();
      for (const e of evs) {
        const r = ri.get(e.dag_run_id);
        const t = ti.get(e.task_id);
        if (r === undefined) {
          lookFor(e.dag_run_id);
          continue;
        }
        if (t === undefined) {
          // A task the page does not know: the DAG changed; its newest runs again.
          want.current = Math.max(want.current, limit);
          refresh();
          continue;
        }
        if (e.map_index >= 0) {
          want.current = Math.max(want.current, r + 1);
          refresh();
          continue;
        }
        const list: GridRun[] = runs ?? (runs = old.runs.slice());
        let run = touched.get(r);
        if (!run) {
          run = { ...list[r], states: list[r].states.slice(), tries: list[r].tries.slice() };
          touched.set(r, run);
          list[r] = run;
        }
        run.states[t] = e.state;
        run.tries[t] = e.try_number;
      }
      return runs ? { ...old, runs } : old;
    });
  };

  useLive({
    ti: (e: TiEvent) => {
      if (e.dag_id !== dag_id) return;
      pending.current.push(e);
      if (!frame.current) frame.current = requestAnimationFrame(applyPending);
    },
    run: (e: RunEvent) => {
      if (e.dag_id !== dag_id) return;
      const i = indexRef.current.runs.get(e.dag_run_id);
      if (i !== undefined) {
        setData((old) => {
          if (!old || old.runs[i]?.dag_run_id !== e.dag_run_id) return old;
          const runs = old.runs.slice();
          runs[i] = { ...runs[i], state: e.state };
          return { ...old, runs };
        });
      }
      // A new run (a cleared old one starts again as well: it is looked for once), or a run that
      // ended (its end date is new): the newest runs again.
      if (i === undefined) {
        if (e.state === 'queued' || e.state === 'running') hidden.current.delete(e.dag_run_id);
        lookFor(e.dag_run_id);
      } else if (e.state === 'success' || e.state === 'failed') {
        want.current = Math.max(want.current, i + 1);
        refresh();
      }
    },
  });
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  usePollWhileDown(() => refresh());

  const loadOlder = async () => {
    const d = dataRef.current;
    if (!d || !d.older || loadingOlder) return;
    setLoadingOlder(true);
    try {
      const page = await api.get<GridData>(`/dags/${seg(dag_id)}/grid${qs({ limit, before: d.older })}`);
      setData((old) => {
        if (!old || !sameTasks(old, page)) return old;
        const ids = new Set(old.runs.map((r) => r.dag_run_id));
        return { ...old, runs: old.runs.concat(page.runs.filter((r) => !ids.has(r.dag_run_id))), older: page.older };
      });
    } catch (err) {
      setError(err);
    } finally {
      setLoadingOlder(false);
    }
  };

  return {
    data,
    error,
    loadingOlder,
    reload: () => setGen((g) => g + 1),
    loadOlder,
    refresh: () => {
      want.current = Math.max(want.current, limit);
      refresh();
    },
  };
}
