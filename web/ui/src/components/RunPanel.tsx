// The side panel of a selected run: its dates, conf and note, the count of its task instances
// by state, links to its graph and Gantt chart, and run-level clear and mark.
import { useMemo, useState } from 'preact/hooks';
import { api, canEdit, runPath } from '../api';
import type { GridData, GridTask } from '../dag/types';
import { fmtDate, fmtDuration, fmtUtc, secondsBetween } from '../format';
import { useThrottledLoad, useLive } from '../live';
import { Link, urls, type DagTab } from '../router';
import { StateBadge, StateSquare, stateKey, stateLabel } from '../states';
import type { DagRun } from '../types';
import { ClearRunDialog, MarkRunDialog } from './OpsDialogs';
import { CopyButton, ErrorBox, Loading } from './ui';

type GridRun = GridData['runs'][number];

export function RunPanel(props: {
  dag_id: string;
  run_id: string;
  gridRun?: GridRun;
  tasks: GridTask[];
  tab: DagTab;
  onClose: () => void;
  onChanged: () => void;
}) {
  const { dag_id, run_id } = props;
  const [run, setRun] = useState<DagRun | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [dialog, setDialog] = useState<null | 'clear' | 'success' | 'failed'>(null);

  const load = useThrottledLoad(
    () => {
      api
        .get<DagRun>(runPath(dag_id, run_id))
        .then((r) => {
          setRun(r);
          setError(null);
        })
        .catch(setError);
    },
    500,
    [dag_id, run_id],
  );
  useLive({
    run: (e) => {
      if (e.dag_id === dag_id && e.dag_run_id === run_id) {
        setRun((r) => (r ? { ...r, state: e.state } : r));
        load();
      }
    },
    resync: load,
  });

  // Task instances by state, from the grid row (mapped tasks count each instance).
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    const g = props.gridRun;
    if (!g) return c;
    props.tasks.forEach((t, i) => {
      const m = g.mapped?.[t.task_id];
      if (m && Object.keys(m).length) for (const [s, n] of Object.entries(m as Record<string, number>)) c[stateKey(s)] = (c[stateKey(s)] ?? 0) + n;
      else c[stateKey(g.states[i])] = (c[stateKey(g.states[i])] ?? 0) + 1;
    });
    return c;
  }, [props.gridRun, props.tasks]);

  const state = props.gridRun?.state ?? run?.state;
  const done = state === 'success' || state === 'failed';
  const dur = run ? secondsBetween(run.start_date, run.end_date) : null;

  return (
    <div class="panel" data-testid="run-panel">
      <div class="panel-head">
        <div>
          <div class="panel-kicker">Run</div>
          <h2 class="mono panel-title" data-testid="run-title">
            {run_id}
          </h2>
        </div>
        <button type="button" class="icon-btn" aria-label="Close the run panel" onClick={props.onClose}>
          ×
        </button>
      </div>
      <div class="panel-row">
        <StateBadge state={state} />
        <span class="muted small">{run?.run_type ?? props.gridRun?.run_type}</span>
        <CopyButton text={run_id} label="Copy id" />
      </div>
      <ErrorBox error={error} />
      {canEdit.value && (
        <div class="panel-actions" data-testid="run-actions">
          <button type="button" class="btn btn-small" onClick={() => setDialog('clear')} data-testid="clear-run">
            ↻ Clear…
          </button>
          <button type="button" class="btn btn-small" onClick={() => setDialog('success')} disabled={state === 'success'} data-testid="mark-run-success">
            ✓ Mark success
          </button>
          <button type="button" class="btn btn-small" onClick={() => setDialog('failed')} disabled={state === 'failed'} data-testid="mark-run-failed">
            ✗ Mark failed
          </button>
        </div>
      )}
      <div class="panel-links">
        <Link href={urls.run(dag_id, run_id, 'grid')} aria-current={props.tab === 'grid' ? 'page' : undefined}>
          Grid
        </Link>
        <Link href={urls.run(dag_id, run_id, 'graph')} aria-current={props.tab === 'graph' ? 'page' : undefined}>
          Graph
        </Link>
        <Link href={urls.run(dag_id, run_id, 'gantt')} aria-current={props.tab === 'gantt' ? 'page' : undefined}>
          Gantt
        </Link>
      </div>
      {Object.keys(counts).length > 0 && (
        <ul class="state-counts" aria-label="Task instances by state">
          {Object.entries(counts)
            .sort((a, b) => b[1] - a[1])
            .map(([s, n]) => (
              <li>
                <StateSquare state={s} /> {n} {stateLabel(s === 'none' ? null : s)}
              </li>
            ))}
        </ul>
      )}
      {!run && !error ? (
        <Loading />
      ) : (
        run && (
          <dl class="props">
            <dt>Logical date</dt>
            <dd title={fmtUtc(run.logical_date)}>{fmtDate(run.logical_date)}</dd>
            <dt>Data interval</dt>
            <dd>
              {fmtDate(run.data_interval_start)} → {fmtDate(run.data_interval_end)}
            </dd>
            {run.queued_at && (
              <>
                <dt>Queued</dt>
                <dd title={fmtUtc(run.queued_at)}>{fmtDate(run.queued_at)}</dd>
              </>
            )}
            <dt>Started</dt>
            <dd title={fmtUtc(run.start_date)}>{fmtDate(run.start_date)}</dd>
            <dt>Ended</dt>
            <dd title={fmtUtc(run.end_date)}>{fmtDate(run.end_date)}</dd>
            <dt>Duration</dt>
            <dd>{run.start_date ? fmtDuration(dur) + (done ? '' : ' so far') : '—'}</dd>
            {run.dag_version && (
              <>
                <dt>DAG version</dt>
                <dd class="mono">{run.dag_version.slice(0, 12)}</dd>
              </>
            )}
            <dt>Note</dt>
            <dd>{run.note || <span class="muted">—</span>}</dd>
            <dt>Conf</dt>
            <dd>
              {run.conf && Object.keys(run.conf).length ? (
                <pre class="json" data-testid="run-conf">
                  {JSON.stringify(run.conf, null, 2)}
                </pre>
              ) : (
                <span class="muted">{'{}'}</span>
              )}
            </dd>
          </dl>
        )
      )}
      {dialog === 'clear' && (
        <ClearRunDialog
          dag_id={dag_id}
          run_id={run_id}
          onClose={() => setDialog(null)}
          onDone={() => {
            props.onChanged();
            load();
          }}
        />
      )}
      {(dialog === 'success' || dialog === 'failed') && (
        <MarkRunDialog
          dag_id={dag_id}
          run_id={run_id}
          state={dialog}
          onClose={() => setDialog(null)}
          onDone={() => {
            props.onChanged();
            load();
          }}
        />
      )}
    </div>
  );
}

