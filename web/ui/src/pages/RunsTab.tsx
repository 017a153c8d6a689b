// The runs of a DAG, newest first, with state / type / date filters and pages; dag_run events
// update the rows in place and bring new runs onto the first page.
import { useState } from 'preact/hooks';
import { api, qs, seg } from '../api';
import { Empty, ErrorBox, Loading, Pager } from '../components/ui';
import { fmtDate, fmtDuration, fmtUtc, secondsBetween } from '../format';
import { useThrottledLoad, useLive, usePollWhileDown } from '../live';
import { Link, query, setQuery, urls } from '../router';
import { RUN_STATES, StateBadge } from '../states';
import type { DagRun } from '../types';

const LIMIT = 50;
const LOCAL_MAX = 5000;
const RUN_TYPES = ['scheduled', 'manual', 'backfill'];

/** The start of a day (local) as ISO, or its end. */
function dayBound(v: string, end: boolean): string | undefined {
  if (!v) return undefined;
  const d = new Date(`${v}T${end ? '23:59:59.999' : '00:00:00'}`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function RunsTab({ dag_id }: { dag_id: string }) {
  const q = query.value;
  const state = q.get('state') ?? '';
  const type = q.get('type') ?? '';
  const from = q.get('from') ?? '';
  const to = q.get('to') ?? '';
  const offset = Math.max(0, Number(q.get('offset')) || 0);
  const [data, setData] = useState<{ dag_runs: DagRun[]; total_entries: number } | null>(null);
  const [error, setError] = useState<unknown>(null);

  const url = `/dags/${seg(dag_id)}/dagRuns${qs({
    limit: LIMIT,
    offset,
    order_by: '-execution_date',
    state: state || undefined,
    run_type: type || undefined,
    execution_date_gte: dayBound(from, false),
    execution_date_lte: dayBound(to, true),
  })}`;

  const [local, setLocal] = useState(false);
  const load = useThrottledLoad(
    async () => {
      try {
        let d = await api.get<{ dag_runs: DagRun[]; total_entries: number }>(url);
        let filteredHere = false;
        if (type && d.dag_runs.some((r) => r.run_type !== type)) {
          // A server without the run_type filter: filter the newest runs here instead.
          const all = await api.get<{ dag_runs: DagRun[]; total_entries: number }>(url.replace(/([?&])limit=\d+/, '$1limit=' + LOCAL_MAX).replace(/([?&])offset=\d+/, '$1offset=0'));
          const mine = all.dag_runs.filter((r) => r.run_type === type);
          d = { dag_runs: mine.slice(offset, offset + LIMIT), total_entries: mine.length };
          filteredHere = true;
        }
        setLocal(filteredHere);
        setData(d);
        setError(null);
      } catch (err) {
        setError(err);
      }
    },
    1000,
    [url],
  );

  useLive({
    run: (e) => {
      if (e.dag_id !== dag_id) return;
      let known = false;
      setData((d) => {
        if (!d) return d;
        known = d.dag_runs.some((r) => r.dag_run_id === e.dag_run_id);
        return known ? { ...d, dag_runs: d.dag_runs.map((r) => (r.dag_run_id === e.dag_run_id ? { ...r, state: e.state } : r)) } : d;
      });
      // A new run shows on the first page; an ended one gets its end date.
      if ((!known && offset === 0) || e.state === 'success' || e.state === 'failed') load();
    },
  });
  usePollWhileDown(load);

  const filtered = !!(state || type || from || to);
  return (
    <div class="runs-tab" data-testid="runs-tab">
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter runs">
        <div class="field field-inline">
          <label for="runs-state">State</label>
          <select id="runs-state" value={state} onChange={(e) => setQuery({ state: (e.target as HTMLSelectElement).value, offset: null })} data-testid="runs-state">
            <option value="">Any</option>
            {RUN_STATES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </div>
        <div class="field field-inline">
          <label for="runs-type">Type</label>
          <select id="runs-type" value={type} onChange={(e) => setQuery({ type: (e.target as HTMLSelectElement).value, offset: null })}>
            <option value="">Any</option>
            {RUN_TYPES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </div>
        <div class="field field-inline">
          <label for="runs-from">Logical date from</label>
          <input id="runs-from" type="date" value={from} onChange={(e) => setQuery({ from: (e.target as HTMLInputElement).value, offset: null })} />
        </div>
        <div class="field field-inline">
          <label for="runs-to">to</label>
          <input id="runs-to" type="date" value={to} onChange={(e) => setQuery({ to: (e.target as HTMLInputElement).value, offset: null })} />
        </div>
        {filtered && (
          <button type="button" class="btn btn-small btn-ghost" onClick={() => setQuery({ state: null, type: null, from: null, to: null, offset: null })}>
            Clear filters
          </button>
        )}
      </form>
      <ErrorBox error={error} retry={load} />
      {!data && !error ? (
        <Loading what="runs" />
      ) : data && data.dag_runs.length === 0 ? (
        <Empty>{filtered ? 'No run matches these filters.' : 'No runs yet.'}</Empty>
      ) : (
        data && (
          <>
            <div class="table-scroll">
              <table class="table" data-testid="runs-table">
                <thead>
                  <tr>
                    <th scope="col">State</th>
                    <th scope="col">Run</th>
                    <th scope="col">Type</th>
                    <th scope="col">Logical date</th>
                    <th scope="col">Started</th>
                    <th scope="col">Ended</th>
                    <th scope="col">Duration</th>
                    <th scope="col">Note</th>
                  </tr>
                </thead>
                <tbody>
                  {data.dag_runs.map((r) => (
                    <tr data-testid="run-row" data-run={r.dag_run_id}>
                      <td>
                        <StateBadge state={r.state} small />
                      </td>
                      <td>
                        <Link href={urls.run(dag_id, r.dag_run_id)} class="mono">
                          {r.dag_run_id}
                        </Link>
                      </td>
                      <td>{r.run_type}</td>
                      <td title={fmtUtc(r.logical_date)}>{fmtDate(r.logical_date)}</td>
                      <td title={fmtUtc(r.start_date)}>{fmtDate(r.start_date)}</td>
                      <td title={fmtUtc(r.end_date)}>{fmtDate(r.end_date)}</td>
                      <td>{r.start_date ? fmtDuration(secondsBetween(r.start_date, r.end_date)) : '—'}</td>
                      <td class="note-cell">{r.note ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager offset={offset} limit={LIMIT} total={data.total_entries} onPage={(o) => setQuery({ offset: o || null }, false)} />
            {local && <p class="muted small">Type filtered among the newest {LOCAL_MAX.toLocaleString('en-US')} runs.</p>}
          </>
        )
      )}
    </div>
  );
}
