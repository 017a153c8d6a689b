// Backfills of a DAG: a form whose dry run lists the logical dates (and what happens at each)
// before the backfill can be created, and the list of backfills with pause / resume / cancel.
import { useState } from 'preact/hooks';
import { api, canEdit, errorText, qs } from '../api';
import { Empty, ErrorBox, JsonEditor, Loading, parseJson, toast } from '../components/ui';
import { fmtDate, fmtUtc } from '../format';
import { useThrottledLoad, useLive, usePollWhileDown } from '../live';
import { Link, urls } from '../router';
import type { Backfill, BackfillDryRun, DagDetail } from '../types';

const REPROCESS = [
  { v: 'none', label: 'Missing only', hint: 'create runs only for dates that have none' },
  { v: 'failed', label: 'Missing and failed', hint: 'also run again dates whose run failed' },
  { v: 'completed', label: 'Everything', hint: 'run every date again, whatever its last run did' },
] as const;

function backfillState(b: Backfill): { text: string; icon: string; cls: string } {
  if (b.state) return { text: b.state, icon: b.state === 'cancelled' ? '⊘' : b.state === 'completed' ? '✓' : '▶', cls: b.state };
  if (b.completed_at) return { text: 'finished', icon: '✓', cls: 'completed' };
  if (b.is_paused) return { text: 'paused', icon: '⏸', cls: 'paused' };
  return { text: 'running', icon: '▶', cls: 'running' };
}

export function BackfillsTab({ dag }: { dag: DagDetail | null }) {
  const [list, setList] = useState<Backfill[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const dag_id = dag?.dag_id;

  const load = useThrottledLoad(
    () => {
      if (!dag_id) return;
      api
        .get<{ backfills: Backfill[] }>(`/backfills${qs({ dag_id, limit: 100, order_by: '-id' })}`)
        .then((r) => {
          setList(r.backfills.slice().sort((a, b) => b.id - a.id));
          setError(null);
        })
        .catch(setError);
    },
    2000,
    [dag_id],
  );
  // Backfill runs starting and ending move a backfill along: read the list again (at most every 2 s).
  useLive({
    run: (e) => {
      if (e.dag_id === dag_id && e.dag_run_id.startsWith('backfill__')) load();
    },
  });
  usePollWhileDown(load);

  if (!dag) return <Loading />;
  return (
    <div class="backfills-tab" data-testid="backfills-tab">
      {canEdit.value ? (
        <BackfillForm dag={dag} onCreated={load} />
      ) : (
        <p class="muted">Viewers see backfills; an op or admin creates them.</p>
      )}
      <h2 class="section-title">Backfills of {dag.dag_id}</h2>
      <ErrorBox error={error} retry={load} />
      {!list && !error ? (
        <Loading what="backfills" />
      ) : list && list.length === 0 ? (
        <Empty>No backfills yet.</Empty>
      ) : (
        list && (
          <div class="table-scroll">
            <table class="table" data-testid="backfills-table">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">State</th>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                  <th scope="col">Reprocess</th>
                  <th scope="col">Max active</th>
                  <th scope="col">Order</th>
                  <th scope="col">Created</th>
                  <th scope="col">Finished</th>
                  {canEdit.value && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {list.map((b) => (
                  <BackfillRow b={b} onChange={load} />
                ))}
              </tbody>
            </table>
          </div>
        )
      )}
      <p class="muted small">
        The runs of a backfill are listed in the <Link href={urls.dag(dag.dag_id, 'runs') + '?type=backfill'}>runs tab</Link> (type backfill).
      </p>
    </div>
  );
}

function BackfillRow({ b, onChange }: { b: Backfill; onChange: () => void }) {
  const [busy, setBusy] = useState(false);
  const st = backfillState(b);
  const act = async (what: 'pause' | 'unpause' | 'cancel') => {
    if (what === 'cancel' && !window.confirm(`Cancel backfill ${b.id}? Runs it has not created yet are not created; runs under way finish.`)) return;
    setBusy(true);
    try {
      await api.put(`/backfills/${b.id}/${what}`);
      toast('ok', `Backfill ${b.id} ${what === 'pause' ? 'paused' : what === 'unpause' ? 'resumed' : 'cancelled'}`);
      onChange();
    } catch (err) {
      toast('error', `Backfill ${b.id}: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const done = !!b.completed_at || b.state === 'cancelled' || b.state === 'completed';
  return (
    <tr data-testid="backfill-row" data-id={b.id}>
      <td>{b.id}</td>
      <td>
        <span class={`bf-state bf-${st.cls}`}>
          <span aria-hidden="true">{st.icon}</span> {st.text}
        </span>
      </td>
      <td title={fmtUtc(b.from_date)}>{fmtDate(b.from_date, false)}</td>
      <td title={fmtUtc(b.to_date)}>{fmtDate(b.to_date, false)}</td>
      <td>{b.reprocess_behavior}</td>
      <td>{b.max_active_runs}</td>
      <td>{b.run_backwards ? 'newest first' : 'oldest first'}</td>
      <td title={fmtUtc(b.created_at)}>{fmtDate(b.created_at)}</td>
      <td title={fmtUtc(b.completed_at)}>{fmtDate(b.completed_at)}</td>
      {canEdit.value && (
        <td class="actions">
          {!done &&
            (b.is_paused ? (
              <button type="button" class="btn btn-small" disabled={busy} onClick={() => act('unpause')} data-testid="bf-resume">
                ▶ Resume
              </button>
            ) : (
              <button type="button" class="btn btn-small" disabled={busy} onClick={() => act('pause')} data-testid="bf-pause">
                ⏸ Pause
              </button>
            ))}
          {!done && (
            <button type="button" class="btn btn-small btn-danger-ghost" disabled={busy} onClick={() => act('cancel')} data-testid="bf-cancel">
              ✗ Cancel
            </button>
          )}
        </td>
      )}
    </tr>
  );
}

function BackfillForm({ dag, onCreated }: { dag: DagDetail; onCreated: () => void }) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [reprocess, setReprocess] = useState<'none' | 'failed' | 'completed'>('none');
  const [maxActive, setMaxActive] = useState('10');
  const [backwards, setBackwards] = useState(false);
  const [conf, setConf] = useState('');
  const [plan, setPlan] = useState<{ key: string; result: BackfillDryRun } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const parsed = parseJson(conf);
  const maxN = Number(maxActive);
  const maxError = !Number.isInteger(maxN) || maxN < 1 ? 'At least 1.' : null;
  const body = {
    dag_id: dag.dag_id,
    // Whole days: from the first day's start to the last day's end, in the DAG's zone.
    from_date: from ? `${from}T00:00:00` : '',
    to_date: to ? `${to}T23:59:59` : '',
    reprocess_behavior: reprocess,
    max_active_runs: maxN,
    run_backwards: backwards,
    ...(parsed.ok && conf.trim() ? { dag_run_conf: parsed.value } : {}),
  };
  const key = JSON.stringify(body);
  const planned = plan && plan.key === key ? plan.result : null;
  const ready = !!from && !!to && !maxError && parsed.ok;
  const noSchedule = !dag.schedule_interval;

  const dryRun = async (ev?: Event) => {
    ev?.preventDefault();
    if (!ready) return;
    setBusy(true);
    setError(null);
    try {
      const r = await api.post<BackfillDryRun>('/backfills/dry_run', body);
      setPlan({ key, result: r });
    } catch (err) {
      setError(errorText(err));
      setPlan(null);
    } finally {
      setBusy(false);
    }
  };
  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      const b = await api.post<Backfill>('/backfills', body);
      toast('ok', `Backfill ${b.id} created`);
      setPlan(null);
      onCreated();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const counts: Record<string, number> = {};
  for (const s of planned?.backfills ?? []) counts[s.action ?? 'create'] = (counts[s.action ?? 'create'] ?? 0) + 1;
  const toRun = (counts.create ?? 0) + (counts.reprocess ?? 0);

  return (
    <form class="card form backfill-form" onSubmit={dryRun} aria-labelledby="bf-title" data-testid="backfill-form">
      <h2 id="bf-title" class="section-title">
        New backfill
      </h2>
      {noSchedule && <div class="warn-box">This DAG has no schedule: a backfill needs one to know its dates.</div>}
      <div class="field-row">
        <div class="field">
          <label for="bf-from">From (logical date)</label>
          <input id="bf-from" type="date" required value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} data-testid="bf-from" />
        </div>
        <div class="field">
          <label for="bf-to">To (inclusive)</label>
          <input id="bf-to" type="date" required value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} data-testid="bf-to" />
        </div>
        <div class="field">
          <label for="bf-max">Max active runs</label>
          <input id="bf-max" type="number" min={1} value={maxActive} onInput={(e) => setMaxActive((e.target as HTMLInputElement).value)} aria-invalid={maxError ? 'true' : 'false'} />
          {maxError && <div class="field-error">✗ {maxError}</div>}
        </div>
      </div>
      <div class="field-hint">Whole days in the DAG's time zone ({dag.timezone ?? 'UTC'}): from the start of the first to the end of the last. Every schedule date in between gets a run.</div>
      <fieldset class="radios">
        <legend>Reprocess</legend>
        {REPROCESS.map((r) => (
          <label class="check">
            <input type="radio" name="bf-reprocess" value={r.v} checked={reprocess === r.v} onChange={() => setReprocess(r.v)} />
            <span>
              {r.label} <span class="muted small">— {r.hint}</span>
            </span>
          </label>
        ))}
      </fieldset>
      <label class="check">
        <input type="checkbox" checked={backwards} onChange={(e) => setBackwards((e.target as HTMLInputElement).checked)} />
        <span>Run backwards (newest date first)</span>
      </label>
      <details>
        <summary>Conf for the runs (optional)</summary>
        <JsonEditor id="bf-conf" label="Conf (JSON object)" value={conf} onInput={setConf} error={parsed.ok ? null : parsed.message} rows={4} />
      </details>
      {error && (
        <div class="error-box" role="alert" data-testid="bf-error">
          ✗ {error}
        </div>
      )}
      <div class="form-actions">
        <button type="submit" class="btn" disabled={!ready || busy} data-testid="bf-dry-run">
          Preview dates (dry run)
        </button>
        <button type="button" class="btn btn-primary" disabled={!planned || toRun === 0 || busy} onClick={create} data-testid="bf-create">
          Create backfill{planned ? ` of ${toRun} run${toRun === 1 ? '' : 's'}` : ''}
        </button>
        {!planned && ready && <span class="muted small">Preview first: the backfill is created from what the dry run shows.</span>}
      </div>
      {planned && (
        <section class="dry-run" aria-live="polite" data-testid="bf-plan">
          <h3>
            {planned.total_entries} date{planned.total_entries === 1 ? '' : 's'}:{' '}
            {Object.entries(counts)
              .map(([a, n]) => `${n} ${a === 'create' ? 'new run' + (n === 1 ? '' : 's') : a === 'reprocess' ? 'to run again' : 'skipped (a run exists)'}`)
              .join(', ')}
          </h3>
          <ol class="dry-run-list">
            {planned.backfills.slice(0, 1000).map((s) => (
              <li data-testid="bf-date" class={`bf-act-${s.action ?? 'create'}`}>
                <span class="mono">{fmtDate(s.logical_date)}</span> <span class="muted small">{s.action === 'skip' ? 'skip' : s.action === 'reprocess' ? 'run again' : 'new run'}</span>
              </li>
            ))}
            {planned.backfills.length > 1000 && <li class="muted">… and {planned.backfills.length - 1000} more</li>}
          </ol>
        </section>
      )}
    </form>
  );
}
