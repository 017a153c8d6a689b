// The home page: every DAG with its schedule, next run, recent runs and counts; filter, sort,
// pause and trigger. The list is loaded in pages of /dags plus one /dagSummaries call, kept up to
// date by dag_run events, and rendered virtualised so that thousands of DAGs stay fast.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, canEdit, errorText, qs } from '../api';
import { ImportErrorBanner } from '../components/ImportErrorBanner';
import { TriggerDialog } from '../components/TriggerDialog';
import { ErrorBox, Loading, PauseToggle, toast, useTitle } from '../components/ui';
import { useWindowVirtual } from '../components/virtual';
import { fmtDate, fmtRelative, fmtUtc, plural } from '../format';
import { throttle, useLive, usePollWhileDown } from '../live';
import { Link, query, setQuery, urls } from '../router';
import { StateSquare, stateLabel } from '../states';
import type { Dag, DagRun, DagSummary } from '../types';

const ROW_H = 64;
const FIRST_PAGE = 200;
const PAGE = 1000;
const RECENT = 5;

type SortKey = 'dag_id' | 'owner' | 'schedule' | 'next' | 'last' | 'running';
const SORTS: { key: SortKey; label: string }[] = [
  { key: 'dag_id', label: 'DAG' },
  { key: 'owner', label: 'Owner' },
  { key: 'schedule', label: 'Schedule' },
  { key: 'next', label: 'Next run' },
  { key: 'last', label: 'Recent runs' },
  { key: 'running', label: 'Running' },
];

/** Loads every DAG: a first page at once, the rest in parallel pages. */
async function loadAllDags(onPage: (dags: Dag[], total: number) => void, signal: AbortSignal): Promise<void> {
  const first = await api.get<{ dags: Dag[]; total_entries: number }>(`/dags${qs({ limit: FIRST_PAGE, offset: 0, order_by: 'dag_id' })}`, { signal });
  onPage(first.dags, first.total_entries);
  const offsets: number[] = [];
  for (let o = FIRST_PAGE; o < first.total_entries; o += PAGE) offsets.push(o);
  // Two at a time: the daemon has two cores and other clients.
  let i = 0;
  const worker = async () => {
    while (i < offsets.length) {
      const o = offsets[i++];
      const p = await api.get<{ dags: Dag[]; total_entries: number }>(`/dags${qs({ limit: PAGE, offset: o, order_by: 'dag_id' })}`, { signal });
      onPage(p.dags, p.total_entries);
    }
  };
  await Promise.all([worker(), worker()]);
}

function scheduleText(d: Dag, s?: DagSummary): string {
  return s?.timetable_description || d.timetable_description || (d.schedule_interval?.value ?? 'manual only');
}

/** When the next scheduled run starts (its data interval's end) and its logical date. */
export function nextRun(d: Dag, s?: DagSummary): { at: string | null; logical: string | null } {
  if (d.is_paused) return { at: null, logical: null };
  const at = s?.next_dagrun_create_after ?? d.next_dagrun_create_after ?? null;
  const logical = s?.next_dagrun ?? d.next_dagrun ?? null;
  return { at: at ?? logical, logical };
}

function lastState(s?: DagSummary): string {
  return s?.recent?.[0]?.state ?? 'none';
}

export function DagListPage() {
  useTitle('DAGs');
  const [dags, setDags] = useState<Dag[] | null>(null);
  const [total, setTotal] = useState(0);
  const [summaries, setSummaries] = useState<Record<string, DagSummary>>({});
  const [error, setError] = useState<unknown>(null);
  const [trigger, setTrigger] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const listRef = useRef<HTMLDivElement>(null);

  const q = query.value;
  const text = q.get('q') ?? '';
  const tag = q.get('tag') ?? '';
  const status = q.get('status') ?? 'all';
  const stateFilter = q.get('state') ?? '';
  const sort = (q.get('sort') as SortKey) || 'dag_id';
  const dir = q.get('dir') === 'desc' ? -1 : 1;

  // Load DAGs and summaries.
  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    const acc = new Map<string, Dag>();
    loadAllDags((page, t) => {
      for (const d of page) acc.set(d.dag_id, d);
      setTotal(t);
      setDags([...acc.values()]);
    }, ctl.signal).catch((err) => {
      if ((err as Error).name !== 'AbortError') setError(err);
    });
    api
      .get<{ dags: Record<string, DagSummary> }>(`/dagSummaries${qs({ recent: RECENT })}`, { signal: ctl.signal })
      .then((r) => setSummaries(r.dags ?? {}))
      .catch((err) => {
        if ((err as Error).name !== 'AbortError') toast('error', `Cannot load recent runs: ${errorText(err)}`);
      });
    return () => ctl.abort();
  }, [reload]);

  // Live: a dag_run event updates that DAG's marks at once and its counts shortly after.
  const dirty = useRef(new Set<string>());
  const flush = useMemo(
    () =>
      throttle(async () => {
        const ids = [...dirty.current];
        dirty.current.clear();
        if (!ids.length) return;
        for (let i = 0; i < ids.length; i += 100) {
          try {
            const r = await api.get<{ dags: Record<string, DagSummary> }>(`/dagSummaries${qs({ dag_ids: ids.slice(i, i + 100).join(','), recent: RECENT })}`);
            setSummaries((s) => ({ ...s, ...r.dags }));
          } catch {
            /* the next event or resync tries again */
          }
        }
      }, 500),
    [],
  );
  useEffect(() => () => flush.cancel(), []);
  useLive({
    run: (e) => {
      setSummaries((all) => {
        const s = all[e.dag_id];
        if (!s) return all;
        const recent = s.recent.some((r) => r.dag_run_id === e.dag_run_id)
          ? s.recent.map((r) => (r.dag_run_id === e.dag_run_id ? { ...r, state: e.state } : r))
          : [{ dag_run_id: e.dag_run_id, state: e.state, logical_date: null }, ...s.recent].slice(0, RECENT);
        return { ...all, [e.dag_id]: { ...s, recent } };
      });
      dirty.current.add(e.dag_id);
      flush();
    },
  });
  // While the stream is down, refresh the summaries (one call) every 5 s.
  usePollWhileDown(() => {
    api
      .get<{ dags: Record<string, DagSummary> }>(`/dagSummaries${qs({ recent: RECENT })}`)
      .then((r) => setSummaries(r.dags ?? {}))
      .catch(() => {});
  });

  const allTags = useMemo(() => {
    const t = new Set<string>();
    for (const d of dags ?? []) for (const x of d.tags) t.add(x.name);
    return [...t].sort();
  }, [dags]);

  const rows = useMemo(() => {
    if (!dags) return [];
    const needle = text.trim().toLowerCase();
    const out = dags.filter((d) => {
      if (status === 'active' && d.is_paused) return false;
      if (status === 'paused' && !d.is_paused) return false;
      if (tag && !d.tags.some((t) => t.name === tag)) return false;
      if (stateFilter) {
        const s = summaries[d.dag_id];
        if (stateFilter === 'running') {
          if (!s || s.running + s.queued === 0) return false;
        } else if (lastState(s) !== stateFilter) return false;
      }
      if (needle) {
        const hay = `${d.dag_id}\n${d.description ?? ''}\n${d.owners.join(' ')}\n${d.tags.map((t) => t.name).join(' ')}`.toLowerCase();
        if (!hay.includes(needle)) return false;
      }
      return true;
    });
    const key = (d: Dag): string | number => {
      const s = summaries[d.dag_id];
      switch (sort) {
        case 'owner':
          return d.owners.join(',');
        case 'schedule':
          return scheduleText(d, s);
        case 'next':
          return nextRun(d, s).at ?? '\uffff';
        case 'last':
          return s?.recent?.[0]?.logical_date ?? '';
        case 'running':
          return (s?.running ?? 0) * 100000 + (s?.queued ?? 0);
        default:
          return d.dag_id;
      }
    };
    out.sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      const c = typeof ka === 'number' && typeof kb === 'number' ? ka - kb : String(ka).localeCompare(String(kb));
      return c !== 0 ? c * dir : a.dag_id.localeCompare(b.dag_id);
    });
    return out;
  }, [dags, summaries, text, tag, status, stateFilter, sort, dir]);

  const { start, end } = useWindowVirtual(rows.length, ROW_H, listRef);

  const setDag = (d: Dag) => setDags((all) => (all ? all.map((x) => (x.dag_id === d.dag_id ? { ...x, ...d } : x)) : all));

  // A click on the sorted column flips its direction; on another column sorts by it, ascending.
  const sortBy = (k: SortKey) => setQuery({ sort: k === 'dag_id' ? null : k, dir: sort === k && dir === 1 ? 'desc' : null });

  const loading = dags !== null && dags.length < total;
  return (
    <div class="page page-dags">
      <div class="page-head">
        <h1>DAGs</h1>
        <div class="page-head-meta" aria-live="polite">
          {dags === null ? '' : loading ? `Loading ${dags.length.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}…` : plural(total, 'DAG')}
        </div>
      </div>
      <ImportErrorBanner />
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()} data-testid="dag-filters">
        <div class="field field-inline grow">
          <label for="dag-search">Search</label>
          <input
            id="dag-search"
            type="search"
            placeholder="DAG id, description, owner or tag"
            value={text}
            onInput={(e) => setQuery({ q: (e.target as HTMLInputElement).value })}
            data-testid="dag-search"
          />
        </div>
        <div class="field field-inline">
          <label for="dag-tag">Tag</label>
          <select id="dag-tag" value={tag} onChange={(e) => setQuery({ tag: (e.target as HTMLSelectElement).value })}>
            <option value="">All tags</option>
            {allTags.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
        </div>
        <fieldset class="seg" aria-label="Paused or active">
          {(['all', 'active', 'paused'] as const).map((s) => (
            <label class={status === s ? 'on' : ''}>
              <input type="radio" name="dag-status" value={s} checked={status === s} onChange={() => setQuery({ status: s === 'all' ? null : s })} />
              {s === 'all' ? 'All' : s === 'active' ? 'Active' : 'Paused'}
            </label>
          ))}
        </fieldset>
        <div class="field field-inline">
          <label for="dag-state">Last run</label>
          <select id="dag-state" value={stateFilter} onChange={(e) => setQuery({ state: (e.target as HTMLSelectElement).value })} data-testid="dag-state-filter">
            <option value="">Any state</option>
            <option value="running">Running or queued now</option>
            <option value="success">✓ Last run succeeded</option>
            <option value="failed">✗ Last run failed</option>
            <option value="queued">◷ Last run queued</option>
            <option value="none">· Never ran</option>
          </select>
        </div>
        {(text || tag || status !== 'all' || stateFilter) && (
          <button type="button" class="btn btn-small btn-ghost" onClick={() => setQuery({ q: null, tag: null, status: null, state: null })}>
            Clear filters
          </button>
        )}
      </form>
      <ErrorBox error={error} retry={() => setReload((n) => n + 1)} />
      {dags === null && !error ? (
        <Loading what="DAGs" />
      ) : (
        <div class="dag-table" role="table" aria-label="DAGs" aria-rowcount={rows.length + 1} data-testid="dag-table">
          <div class="dag-row dag-row-head" role="row" aria-rowindex={1}>
            <div role="columnheader" class="c-pause">
              <span class="sr-only">Paused</span>
            </div>
            {SORTS.map((s) => (
              <div role="columnheader" class={`c-${s.key}`} aria-sort={sort === s.key ? (dir === 1 ? 'ascending' : 'descending') : 'none'}>
                <button type="button" class="sort-btn" onClick={() => sortBy(s.key)}>
                  {s.label}
                  <span aria-hidden="true" class="sort-mark">
                    {sort === s.key ? (dir === 1 ? '▲' : '▼') : '↕'}
                  </span>
                </button>
              </div>
            ))}
            <div role="columnheader" class="c-actions">
              <span class="sr-only">Actions</span>
            </div>
          </div>
          {rows.length === 0 && dags && (
            <div class="empty" role="row">
              <span role="cell">{dags.length ? 'No DAG matches these filters.' : 'No DAGs yet: put a .lua file in the DAG folder.'}</span>
            </div>
          )}
          <div ref={listRef} class="dag-rows" style={{ height: `${rows.length * ROW_H}px` }}>
            {rows.slice(start, end).map((d, i) => (
              <DagRow
                key={d.dag_id}
                dag={d}
                summary={summaries[d.dag_id]}
                top={(start + i) * ROW_H}
                index={start + i + 2}
                onDag={setDag}
                onTrigger={() => setTrigger(d.dag_id)}
                onTag={(t) => setQuery({ tag: t })}
              />
            ))}
          </div>
        </div>
      )}
      {trigger && (
        <TriggerDialog
          dag_id={trigger}
          onClose={() => setTrigger(null)}
          onTriggered={(run: DagRun) => {
            setTrigger(null);
            toast(
              'ok',
              <>
                Triggered{' '}
                <Link href={urls.run(run.dag_id, run.dag_run_id)} data-testid="toast-run-link">
                  {run.dag_run_id}
                </Link>
              </>,
            );
            dirty.current.add(run.dag_id);
            flush();
          }}
        />
      )}
    </div>
  );
}

function DagRow(props: {
  dag: Dag;
  summary?: DagSummary;
  top: number;
  index: number;
  onDag: (d: Dag) => void;
  onTrigger: () => void;
  onTag: (t: string) => void;
}) {
  const { dag: d, summary: s } = props;
  const next = nextRun(d, s);
  const recent = (s?.recent ?? []).slice().reverse();
  return (
    <div
      class={`dag-row${d.is_paused ? ' is-paused' : ''}`}
      role="row"
      aria-rowindex={props.index}
      style={{ transform: `translateY(${props.top}px)` }}
      data-testid="dag-row"
      data-dag={d.dag_id}
    >
      <div role="cell" class="c-pause">
        <PauseToggle dag={d} onChange={props.onDag} />
      </div>
      <div role="cell" class="c-dag_id">
        <Link href={urls.dag(d.dag_id)} class="dag-link" data-testid="dag-link">
          {d.dag_id}
        </Link>
        <div class="dag-sub">
          {d.has_import_errors && (
            <span class="tag tag-bad" title="The file's latest version failed to import; the last good version runs.">
              ▲ import error
            </span>
          )}
          {d.tags.map((t) => (
            <button type="button" class="tag" onClick={() => props.onTag(t.name)} title={`Show DAGs tagged ${t.name}`}>
              {t.name}
            </button>
          ))}
          {d.description && <span class="dag-desc">{d.description}</span>}
        </div>
      </div>
      <div role="cell" class="c-owner">
        {d.owners.join(', ')}
      </div>
      <div role="cell" class="c-schedule" title={d.schedule_interval?.value ?? ''}>
        {scheduleText(d, s)}
      </div>
      <div role="cell" class="c-next" title={next.at ? `starts ${fmtUtc(next.at)}; logical date ${fmtUtc(next.logical)}` : ''}>
        {next.at ? (
          <>
            {fmtDate(next.at, false)}
            <div class="muted small">{fmtRelative(next.at)}</div>
          </>
        ) : (
          <span class="muted">{d.is_paused && (s?.next_dagrun || d.next_dagrun) ? 'paused' : '—'}</span>
        )}
      </div>
      <div role="cell" class="c-last">
        {recent.length ? (
          <span class="recent" data-testid="recent-runs">
            {recent.map((r) => (
              <Link href={urls.run(d.dag_id, r.dag_run_id)} class="recent-link" data-state={r.state}>
                <StateSquare state={r.state} title={`${stateLabel(r.state)} · ${r.dag_run_id}${r.logical_date ? ` · ${fmtDate(r.logical_date)}` : ''}`} />
              </Link>
            ))}
          </span>
        ) : (
          <span class="muted">{s ? 'no runs yet' : '…'}</span>
        )}
      </div>
      <div role="cell" class="c-running">
        {s && (s.running > 0 || s.queued > 0) ? (
          <span class="counts" data-testid="run-counts">
            {s.running > 0 && (
              <span class="count state-fg-running" title={`${s.running} running`}>
                ▶ {s.running}
              </span>
            )}
            {s.queued > 0 && (
              <span class="count state-fg-queued" title={`${s.queued} queued`}>
                ◷ {s.queued}
              </span>
            )}
          </span>
        ) : (
          <span class="muted">—</span>
        )}
      </div>
      <div role="cell" class="c-actions">
        {canEdit.value && (
          <button type="button" class="btn btn-small" onClick={props.onTrigger} aria-label={`Trigger ${d.dag_id}`} data-testid="trigger-btn">
            ▶ Trigger
          </button>
        )}
        <Link href={urls.dag(d.dag_id, 'runs')} class="btn btn-small btn-ghost" aria-label={`Runs of ${d.dag_id}`}>
          Runs
        </Link>
      </div>
    </div>
  );
}
