// The task-instance drawer: state, every try, the rendered command, outputs, the log of the chosen
// try (live while it runs), and clear / mark. A mapped task without an index lists its instances.
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, canEdit, fetchJson, qs, tiPath } from '../api';
import { LogView } from '../dag/LogView';
import type { GridTask } from '../dag/types';
import { fmtDate, fmtDuration, fmtUtc, secondsBetween } from '../format';
import { throttle, useLive } from '../live';
import { Link, urls, type DagTab } from '../router';
import { StateBadge, StateSquare, stateLabel } from '../states';
import type { TaskInstance, XCom } from '../types';
import { ClearTaskDialog, MarkTaskDialog } from './OpsDialogs';
import { CopyButton, ErrorBox, Loading } from './ui';

type Dialog = null | 'clear' | 'success' | 'failed' | 'skipped';

export function TaskPanel(props: {
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  tab: DagTab;
  tasks: GridTask[];
  onClose: () => void;
  onChanged: () => void;
}) {
  const { dag_id, run_id, task_id, map_index } = props;
  const task = props.tasks.find((t) => t.task_id === task_id);
  const mapped = !!task?.mapped;
  const listing = mapped && map_index < 0;

  const [ti, setTi] = useState<TaskInstance | null>(null);
  const [tries, setTries] = useState<TaskInstance[]>([]);
  const [instances, setInstances] = useState<TaskInstance[] | null>(null);
  const [xcoms, setXcoms] = useState<XCom[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [chosenTry, setChosenTry] = useState<number | null>(null);
  const [dialog, setDialog] = useState<Dialog>(null);

  const base = tiPath(dag_id, run_id, task_id, map_index);
  const settle = useRef(0);
  useEffect(() => () => window.clearTimeout(settle.current), []);

  const load = useMemo(
    () =>
      throttle(async () => {
        try {
          if (listing) {
            const r = await api.get<{ task_instances: TaskInstance[] }>(`${tiPath(dag_id, run_id, task_id)}/listMapped${qs({ limit: 10000 })}`);
            setInstances(r.task_instances);
          } else {
            const [one, t] = await Promise.all([
              api.get<TaskInstance>(base),
              api.get<{ task_instances: TaskInstance[] }>(`${base}/tries`).catch(() => ({ task_instances: [] as TaskInstance[] })),
            ]);
            setTi(one);
            setTries(t.task_instances);
          }
          setError(null);
        } catch (err) {
          setError(err);
        }
      }, 400),
    [base, listing],
  );

  const loadXcoms = useMemo(
    () => async () => {
      if (listing) return;
      try {
        const r = await api.get<{ xcom_entries: XCom[] }>(`${tiPath(dag_id, run_id, task_id)}/xcomEntries${qs({ map_index: map_index >= 0 ? map_index : undefined, limit: 100 })}`);
        // The list carries no values: fetch each (there are few outputs per task).
        const full = await Promise.all(
          r.xcom_entries.slice(0, 50).map((x) =>
            x.value !== undefined
              ? x
              : api
                  .get<XCom>(`${tiPath(dag_id, run_id, task_id)}/xcomEntries/${encodeURIComponent(x.key)}${qs({ map_index: map_index >= 0 ? map_index : undefined })}`)
                  .catch(() => x),
          ),
        );
        setXcoms(full);
      } catch {
        setXcoms([]);
      }
    },
    [base, listing],
  );

  useEffect(() => {
    load();
    loadXcoms();
    return () => load.cancel();
  }, [load]);

  useLive({
    ti: (e) => {
      if (e.dag_id !== dag_id || e.dag_run_id !== run_id || e.task_id !== task_id) return;
      if (!listing && e.map_index !== map_index) return;
      if (!listing) setTi((t) => (t ? { ...t, state: e.state, try_number: e.try_number } : t));
      load();
      if (e.state === 'success' || e.state === 'failed' || e.state === 'skipped' || e.state === 'upstream_failed' || e.state === 'up_for_retry') {
        loadXcoms();
        // The try's end (duration, exit code, its row in the tries) may be written just after the
        // event: read once more a moment later.
        window.clearTimeout(settle.current);
        settle.current = window.setTimeout(() => {
          load();
          loadXcoms();
        }, 1200);
      }
    },
    resync: load,
  });

  const current = ti?.try_number ?? 0;
  const shownTry = chosenTry ?? current;
  const shownTryRow = tries.find((t) => t.try_number === shownTry);
  const running = !!ti && shownTry === current && (ti.state === 'running' || ti.state === 'queued');
  const label = `${task_id}${map_index >= 0 ? `[${map_index}]` : ''}`;

  return (
    <div class="panel" data-testid="task-panel" data-task={task_id}>
      <div class="panel-head">
        <div>
          <div class="panel-kicker">
            Task instance · <Link href={urls.run(dag_id, run_id, props.tab)} class="mono">{run_id}</Link>
          </div>
          <h2 class="mono panel-title" data-testid="task-title">
            {label}
          </h2>
        </div>
        <button type="button" class="icon-btn" aria-label="Close the task panel" onClick={props.onClose} data-testid="close-panel">
          ×
        </button>
      </div>
      <ErrorBox error={error} retry={load} />
      {listing ? (
        <MappedList {...props} instances={instances} />
      ) : !ti ? (
        !error && <Loading what="the task instance" />
      ) : (
        <>
          <div class="panel-row">
            <span data-testid="task-state">
              <StateBadge state={ti.state} />
            </span>
            <span class="muted small">
              try {ti.try_number || 0} of {(ti.max_tries ?? 0) + 1}
            </span>
            {mapped && (
              <Link href={urls.task(dag_id, run_id, task_id, -1, props.tab)} class="small">
                all instances
              </Link>
            )}
          </div>
          {canEdit.value && (
            <div class="panel-actions" data-testid="task-actions">
              <button type="button" class="btn btn-small" onClick={() => setDialog('clear')} data-testid="clear-task">
                ↻ Clear…
              </button>
              <button type="button" class="btn btn-small" onClick={() => setDialog('success')} data-testid="mark-success">
                ✓ Mark success…
              </button>
              <button type="button" class="btn btn-small" onClick={() => setDialog('failed')} data-testid="mark-failed">
                ✗ Mark failed…
              </button>
              <button type="button" class="btn btn-small" onClick={() => setDialog('skipped')} data-testid="mark-skipped">
                ⊘ Mark skipped…
              </button>
            </div>
          )}
          <dl class="props props-2">
            <dt>Operator</dt>
            <dd>{ti.operator ?? task?.operator ?? '—'}</dd>
            {task && (
              <>
                <dt>Trigger rule</dt>
                <dd class="mono">{task.trigger_rule}</dd>
              </>
            )}
            <dt>Queued</dt>
            <dd title={fmtUtc(ti.queued_when)}>{fmtDate(ti.queued_when)}</dd>
            <dt>Started</dt>
            <dd title={fmtUtc(ti.start_date)}>{fmtDate(ti.start_date)}</dd>
            <dt>Ended</dt>
            <dd title={fmtUtc(ti.end_date)}>{fmtDate(ti.end_date)}</dd>
            <dt>Duration</dt>
            <dd>{ti.duration !== null && ti.duration !== undefined ? fmtDuration(ti.duration) : ti.start_date && !ti.end_date ? `${fmtDuration(secondsBetween(ti.start_date))} so far` : '—'}</dd>
            {ti.exit_code !== undefined && ti.exit_code !== null && (
              <>
                <dt>Exit code</dt>
                <dd class="mono">{ti.exit_code}</dd>
              </>
            )}
            <dt>Executor</dt>
            <dd>{ti.executor ?? '—'}</dd>
            <dt>Host</dt>
            <dd class="mono">
              {ti.hostname || '—'}
              {ti.pid ? ` · pid ${ti.pid}` : ''}
            </dd>
            <dt>Pool</dt>
            <dd>
              {ti.pool}
              {ti.pool_slots && ti.pool_slots > 1 ? ` (${ti.pool_slots} slots)` : ''}
            </dd>
            {ti.next_retry_at && (
              <>
                <dt>Next try</dt>
                <dd title={fmtUtc(ti.next_retry_at)}>{fmtDate(ti.next_retry_at)}</dd>
              </>
            )}
            {ti.note && (
              <>
                <dt>Note</dt>
                <dd>{ti.note}</dd>
              </>
            )}
          </dl>

          <Section title={`Tries (${tries.length})`}>
            {tries.length === 0 ? (
              <p class="muted small">No try has started yet.</p>
            ) : (
              <div class="table-scroll">
                <table class="table table-compact" data-testid="tries">
                  <thead>
                    <tr>
                      <th scope="col">Try</th>
                      <th scope="col">State</th>
                      <th scope="col">Started</th>
                      <th scope="col">Ended</th>
                      <th scope="col">Duration</th>
                      <th scope="col">Exit</th>
                      <th scope="col">Executor · host</th>
                    </tr>
                  </thead>
                  <tbody>
                    {tries.map((t) => (
                      <tr class={t.try_number === shownTry ? 'is-selected' : ''} data-testid="try-row">
                        <td>
                          <button
                            type="button"
                            class="link-btn"
                            aria-pressed={t.try_number === shownTry}
                            onClick={() => setChosenTry(t.try_number)}
                            title="Show this try's log"
                            data-testid={`try-${t.try_number}`}
                          >
                            #{t.try_number}
                          </button>
                        </td>
                        <td>
                          <StateBadge state={t.state} small />
                        </td>
                        <td title={fmtUtc(t.start_date)}>{fmtDate(t.start_date)}</td>
                        <td title={fmtUtc(t.end_date)}>{fmtDate(t.end_date)}</td>
                        <td>{fmtDuration(t.duration)}</td>
                        <td class="mono">{t.exit_code ?? '—'}</td>
                        <td>
                          {t.executor ?? '—'} · <span class="mono">{t.hostname || '—'}</span>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>

          <Section title={`Log${shownTry ? ` of try ${shownTry}` : ''}`} testid="log-section">
            {shownTry > 0 && (shownTryRow || shownTry === current) ? (
              <LogView
                key={`${shownTry}`}
                dag_id={dag_id}
                run_id={run_id}
                task_id={task_id}
                map_index={map_index}
                try_number={shownTry}
                running={running}
                fetchJson={fetchJson}
              />
            ) : (
              <p class="muted small">No log yet: the task instance has not started.</p>
            )}
          </Section>
          <Section title="Command">
            <RenderedFields ti={ti} />
          </Section>

          <Section title="Outputs">
            {xcoms === null ? (
              <Loading />
            ) : xcoms.length === 0 ? (
              <p class="muted small">
                No outputs. A task writes <code>key=value</code> lines to <code>$SLUICE_OUTPUT</code>; downstream tasks read them as{' '}
                <code>{'{{ outputs.TASK.KEY }}'}</code>.
              </p>
            ) : (
              <table class="table table-compact" data-testid="xcoms">
                <tbody>
                  {xcoms.map((x) => (
                    <tr>
                      <th scope="row" class="mono">
                        {x.key}
                      </th>
                      <td>
                        <code class="xcom-value">{x.value ?? '…'}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Section>

        </>
      )}
      {dialog === 'clear' && (
        <ClearTaskDialog dag_id={dag_id} run_id={run_id} task_id={task_id} mapped={mapped} onClose={() => setDialog(null)} onDone={() => {
          setChosenTry(null);
          props.onChanged();
          load();
        }} />
      )}
      {(dialog === 'success' || dialog === 'failed' || dialog === 'skipped') && (
        <MarkTaskDialog
          dag_id={dag_id}
          run_id={run_id}
          task_id={task_id}
          map_index={map_index}
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

function Section(props: { title: string; children: ComponentChildren; testid?: string }) {
  return (
    <section class="panel-section" data-testid={props.testid}>
      <h3>{props.title}</h3>
      {props.children}
    </section>
  );
}

function RenderedFields({ ti }: { ti: TaskInstance }) {
  const f = ti.rendered_fields ?? {};
  const entries = Object.entries(f);
  if (!entries.length)
    return <p class="muted small">{ti.try_number > 0 ? 'The server sent no rendered command for this try.' : 'Rendered when the first try starts.'}</p>;
  return (
    <div data-testid="rendered">
      {entries.map(([k, v]) => {
        const text = typeof v === 'string' ? v : Array.isArray(v) ? v.map((x) => (/[\s'"\\$]/.test(String(x)) ? `'${String(x).replace(/'/g, `'\\''`)}'` : String(x))).join(' ') : JSON.stringify(v, null, 2);
        return (
          <div class="rendered">
            <div class="rendered-head">
              <span class="muted small">{k}</span>
              <CopyButton text={text} />
            </div>
            <pre class="cmd">{text}</pre>
          </div>
        );
      })}
    </div>
  );
}

function MappedList(props: { dag_id: string; run_id: string; task_id: string; tab: DagTab; instances: TaskInstance[] | null }) {
  const { instances } = props;
  if (!instances) return <Loading what="the mapped instances" />;
  const by: Record<string, number> = {};
  for (const t of instances) by[t.state ?? 'none'] = (by[t.state ?? 'none'] ?? 0) + 1;
  return (
    <div data-testid="mapped-list">
      <p class="muted small">
        A mapped task: {instances.length} instance{instances.length === 1 ? '' : 's'}. Pick one for its tries and log.
      </p>
      <ul class="state-counts">
        {Object.entries(by).map(([s, n]) => (
          <li>
            <StateSquare state={s} /> {n} {stateLabel(s === 'none' ? null : s)}
          </li>
        ))}
      </ul>
      <ul class="mapped-list">
        {instances.map((t) => (
          <li>
            <Link href={urls.task(props.dag_id, props.run_id, props.task_id, t.map_index, props.tab)} class="mapped-item" data-testid="mapped-item">
              <StateSquare state={t.state} />
              <span class="mono">[{t.map_index}]</span>
              {t.rendered_map_index && <span class="muted"> {t.rendered_map_index}</span>}
              <span class="muted small"> {fmtDuration(t.duration)}</span>
            </Link>
          </li>
        ))}
      </ul>
    </div>
  );
}
