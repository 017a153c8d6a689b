// A DAG's page: its header (pause, trigger), the tabs (grid, graph, Gantt, code, runs,
// backfills) and the side panel of the selected run or task instance. Every selection is in the
// URL: /dags/D, /dags/D/graph, /dags/D/runs/R[?tab=graph], /dags/D/runs/R/tasks/T[/M].
import { useEffect, useState } from 'preact/hooks';
import { api, canEdit, seg } from '../api';
import { Graph, prewarmLayout, WARM_AT } from '../dag/Graph';
import { Grid } from '../dag/Grid';
import type { GridData } from '../dag/types';
import { RunPanel } from '../components/RunPanel';
import { TaskPanel } from '../components/TaskPanel';
import { TriggerDialog } from '../components/TriggerDialog';
import { ErrorBox, Loading, PauseToggle, toast, useTitle } from '../components/ui';
import { fmtDate, fmtRelative, fmtUtc } from '../format';
import { useLive } from '../live';
import { DAG_TABS, Link, navigate, query, setQuery, urls, type DagTab, type Route } from '../router';
import { StateBadge, stateIcon } from '../states';
import type { DagDetail } from '../types';
import { BackfillsTab } from './BackfillsTab';
import { CodeTab } from './CodeTab';
import { GanttTab } from './GanttTab';
import { RunsTab } from './RunsTab';
import { nextRun } from './DagList';
import { useGrid } from './useGrid';

type DagRoute = Extract<Route, { name: 'dag' }>;
type GridRun = GridData['runs'][number];

const TAB_LABEL: Record<DagTab, string> = {
  grid: 'Grid',
  graph: 'Graph',
  gantt: 'Gantt',
  code: 'Code',
  runs: 'Runs',
  backfills: 'Backfills',
};

const RUN_LIMITS = [25, 50, 100, 365, 1000];

function shortRun(id: string): string {
  return id.length > 48 ? id.slice(0, 45) + '…' : id;
}

export function DagPage({ route: r }: { route: DagRoute }) {
  const { dag_id } = r;
  const [dag, setDag] = useState<DagDetail | null>(null);
  const [dagError, setDagError] = useState<unknown>(null);
  const [trigger, setTrigger] = useState(false);
  const limitQ = Number(query.value.get('runs'));
  const limit = RUN_LIMITS.includes(limitQ) ? limitQ : 25;
  const grid = useGrid(dag_id, limit);

  useEffect(() => {
    setDagError(null);
    api.get<DagDetail>(`/dags/${seg(dag_id)}/details`).then(setDag).catch(setDagError);
  }, [dag_id]);

  // A big DAG's graph lays out faster if ELK has run once before: warm it while the page idles.
  const ntasks = grid.data?.tasks.length ?? 0;
  useEffect(() => {
    if (ntasks > WARM_AT) prewarmLayout();
  }, [ntasks]);

  // The run shown by the graph and Gantt tabs: the selected one, else the newest.
  const runs = grid.data?.runs ?? [];
  const run: GridRun | undefined = r.run_id ? runs.find((x) => x.dag_run_id === r.run_id) : runs[0];
  const runId = r.run_id ?? run?.dag_run_id;

  useTitle(dag_id, r.run_id && `run ${shortRun(r.run_id)}`, r.task_id && `task ${r.task_id}${r.map_index !== undefined && r.map_index >= 0 ? `[${r.map_index}]` : ''}`, r.run_id || r.tab === 'grid' ? null : TAB_LABEL[r.tab]);

  // The next run date changes when a run is created.
  useLive({
    run: (e) => {
      if (e.dag_id === dag_id && e.state === 'queued')
        api.get<DagDetail>(`/dags/${seg(dag_id)}/details`).then(setDag).catch(() => {});
    },
  });

  if (dagError)
    return (
      <div class="page">
        <h1 class="mono">{dag_id}</h1>
        <ErrorBox error={dagError} />
        <p>
          <Link href="/">Back to the DAGs</Link>
        </p>
      </div>
    );

  const panelOpen = !!r.run_id && (r.tab === 'grid' || r.tab === 'graph' || r.tab === 'gantt');
  const tabHref = (t: DagTab) =>
    r.run_id && (t === 'grid' || t === 'graph' || t === 'gantt')
      ? r.task_id
        ? urls.task(dag_id, r.run_id, r.task_id, r.map_index, t)
        : urls.run(dag_id, r.run_id, t)
      : urls.dag(dag_id, t) + (limit !== 25 && (t === 'grid' || t === 'graph') ? `?runs=${limit}` : '');
  const closePanel = () => navigate(r.tab === 'grid' ? urls.dag(dag_id) + (limit !== 25 ? `?runs=${limit}` : '') : urls.dag(dag_id, r.tab));

  return (
    <div class="page page-dag" data-testid="dag-page" data-dag={dag_id}>
      <div class="dag-head">
        <div class="dag-title">
          <nav class="crumbs" aria-label="Breadcrumb">
            <Link href="/">DAGs</Link> <span aria-hidden="true">/</span>
          </nav>
          <h1 class="mono" data-testid="dag-title">
            {dag_id}
          </h1>
          {dag && <PauseToggle dag={dag} onChange={(d) => setDag({ ...dag, ...d })} />}
          {dag && canEdit.value && (
            <button type="button" class="btn btn-primary" onClick={() => setTrigger(true)} data-testid="trigger-btn">
              ▶ Trigger
            </button>
          )}
        </div>
        {dag ? (
          <dl class="dag-meta">
            {dag.description && (
              <div class="wide">
                <dt class="sr-only">Description</dt>
                <dd>{dag.description}</dd>
              </div>
            )}
            <div>
              <dt>Schedule</dt>
              <dd title={dag.schedule_interval?.value ?? ''}>{dag.timetable_description || dag.schedule_interval?.value || 'manual only'}</dd>
            </div>
            <div>
              <dt>Next run</dt>
              <NextRunText dag={dag} />
            </div>
            <div>
              <dt>Owner</dt>
              <dd>{dag.owners.join(', ') || '—'}</dd>
            </div>
            {dag.tags.length > 0 && (
              <div>
                <dt>Tags</dt>
                <dd>
                  {dag.tags.map((t) => (
                    <Link class="tag" href={`/?tag=${encodeURIComponent(t.name)}`}>
                      {t.name}
                    </Link>
                  ))}
                </dd>
              </div>
            )}
            <div>
              <dt>Runs</dt>
              <dd>{grid.data ? grid.data.total_runs.toLocaleString('en-US') : '…'}</dd>
            </div>
            {dag.has_import_errors && (
              <div>
                <dt>File</dt>
                <dd class="bad">
                  <Link href={urls.importErrors()}>▲ the newest version failed to import</Link>
                </dd>
              </div>
            )}
          </dl>
        ) : (
          <Loading what="the DAG" />
        )}
        {dag?.doc_md && (
          <details class="doc-md">
            <summary>Documentation</summary>
            <div class="doc-md-text">{dag.doc_md}</div>
          </details>
        )}
      </div>
      <nav class="tabs" aria-label="Views of the DAG">
        {DAG_TABS.map((t) => (
          <Link href={tabHref(t)} aria-current={r.tab === t ? 'page' : undefined} class="tab" data-testid={`tab-${t}`}>
            {TAB_LABEL[t]}
          </Link>
        ))}
      </nav>
      <div class={`dag-body${panelOpen ? ' with-panel' : ''}`}>
        <div class="dag-view">
          {(r.tab === 'grid' || r.tab === 'graph' || r.tab === 'gantt') && <ErrorBox error={grid.error} retry={grid.reload} />}
          {r.tab === 'grid' &&
            (grid.data ? (
              <>
                <div class="view-bar">
                  <label for="grid-runs">Runs shown</label>
                  <select id="grid-runs" value={String(limit)} onChange={(e) => setQuery({ runs: Number((e.target as HTMLSelectElement).value) === 25 ? null : (e.target as HTMLSelectElement).value })}>
                    {RUN_LIMITS.map((n) => (
                      <option value={String(n)}>{n}</option>
                    ))}
                  </select>
                  <span class="muted small">
                    {grid.data.runs.length.toLocaleString('en-US')} of {grid.data.total_runs.toLocaleString('en-US')} runs · {grid.data.tasks.length.toLocaleString('en-US')} tasks
                  </span>
                  {grid.data.older && (
                    <button type="button" class="btn btn-small" onClick={grid.loadOlder} disabled={grid.loadingOlder}>
                      {grid.loadingOlder ? 'Loading…' : 'Load older runs'}
                    </button>
                  )}
                </div>
                {grid.data.tasks.length === 0 ? (
                  <div class="empty">This DAG has no tasks.</div>
                ) : (
                  <div class="grid-wrap" data-testid="grid">
                    <Grid
                      data={grid.data}
                      selected={r.run_id ? { run_id: r.run_id, task_id: r.task_id } : undefined}
                      onCell={(run_id, task_id, map_index) => navigate(urls.task(dag_id, run_id, task_id, map_index))}
                      onRun={(run_id) => navigate(urls.run(dag_id, run_id))}
                      onLoadOlder={grid.data.older ? grid.loadOlder : undefined}
                    />
                  </div>
                )}
              </>
            ) : (
              !grid.error && <Loading what="the grid" />
            ))}
          {(r.tab === 'graph' || r.tab === 'gantt') && grid.data && (
            <RunPicker dag_id={dag_id} runs={runs} current={runId} tab={r.tab} />
          )}
          {r.tab === 'graph' &&
            (grid.data ? (
              <div class="graph-wrap" data-testid="graph">
                <Graph
                  tasks={grid.data.tasks}
                  states={Object.fromEntries(grid.data.tasks.map((t, i) => [t.task_id, run ? run.states[i] ?? null : null]))}
                  counts={run?.mapped}
                  onTask={(task_id) => runId && navigate(urls.task(dag_id, runId, task_id, -1, 'graph'))}
                />
              </div>
            ) : (
              !grid.error && <Loading what="the graph" />
            ))}
          {r.tab === 'gantt' &&
            (runId ? (
              <GanttTab dag_id={dag_id} run_id={runId} onTask={(task_id, mi) => navigate(urls.task(dag_id, runId, task_id, mi, 'gantt'))} />
            ) : grid.data ? (
              <div class="empty">No runs yet: trigger one to see its Gantt chart.</div>
            ) : null)}
          {r.tab === 'code' && (dag ? <CodeTab dag={dag} /> : <Loading />)}
          {r.tab === 'runs' && <RunsTab dag_id={dag_id} />}
          {r.tab === 'backfills' && <BackfillsTab dag={dag} />}
        </div>
        {panelOpen && r.run_id && (
          <aside class="side-panel" aria-label={r.task_id ? `Task ${r.task_id}` : `Run ${r.run_id}`} data-testid="side-panel">
            {r.task_id ? (
              <TaskPanel
                key={`${r.run_id}/${r.task_id}/${r.map_index}`}
                dag_id={dag_id}
                run_id={r.run_id}
                task_id={r.task_id}
                map_index={r.map_index ?? -1}
                tab={r.tab}
                tasks={grid.data?.tasks ?? []}
                onClose={() => navigate(urls.run(dag_id, r.run_id!, r.tab))}
                onChanged={grid.refresh}
              />
            ) : (
              <RunPanel key={r.run_id} dag_id={dag_id} run_id={r.run_id} gridRun={run} tasks={grid.data?.tasks ?? []} tab={r.tab} onClose={closePanel} onChanged={grid.refresh} />
            )}
          </aside>
        )}
      </div>
      {trigger && (
        <TriggerDialog
          dag_id={dag_id}
          onClose={() => setTrigger(false)}
          onTriggered={(run) => {
            setTrigger(false);
            toast('ok', `Triggered ${run.dag_run_id}`);
            grid.refresh();
            navigate(urls.run(dag_id, run.dag_run_id, r.tab === 'graph' || r.tab === 'gantt' ? r.tab : 'grid'));
          }}
        />
      )}
    </div>
  );
}

function NextRunText({ dag }: { dag: DagDetail }) {
  const n = nextRun(dag);
  if (!n.at) return <dd>{dag.is_paused && dag.schedule_interval ? 'none while paused' : '—'}</dd>;
  return (
    <dd title={`starts ${fmtUtc(n.at)}; logical date ${fmtUtc(n.logical)}`}>
      {fmtDate(n.at, false)} ({fmtRelative(n.at)})
    </dd>
  );
}

function RunPicker({ dag_id, runs, current, tab }: { dag_id: string; runs: GridRun[]; current?: string; tab: DagTab }) {
  const cur = runs.find((x) => x.dag_run_id === current);
  if (!runs.length) return <div class="empty">No runs yet.</div>;
  return (
    <div class="view-bar">
      <label for="run-picker">Run</label>
      <select id="run-picker" value={current} onChange={(e) => navigate(urls.run(dag_id, (e.target as HTMLSelectElement).value, tab))} data-testid="run-picker">
        {!cur && current && <option value={current}>{current}</option>}
        {runs.map((x) => (
          <option value={x.dag_run_id}>
            {stateIcon(x.state)} {x.dag_run_id}
          </option>
        ))}
      </select>
      {cur && <StateBadge state={cur.state} small />}
      {cur && <span class="muted small">{fmtDate(cur.logical_date)}</span>}
    </div>
  );
}
