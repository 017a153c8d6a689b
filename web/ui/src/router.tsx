// History-API routing: the location is a signal, every page is a shareable URL, and <Link>
// renders real <a href> elements so that open-in-new-tab and keyboard navigation work.
import { signal, computed } from '@preact/signals';
import type { ComponentChildren, PartialAnchorHTMLAttributes, TargetedMouseEvent } from 'preact';

export const location = signal({ pathname: window.location.pathname, search: window.location.search });

window.addEventListener('popstate', () => {
  location.value = { pathname: window.location.pathname, search: window.location.search };
});

/** Goes to `to` (a path with an optional query); replace keeps the history entry. */
export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  const url = new URL(to, window.location.origin);
  if (url.pathname + url.search === window.location.pathname + window.location.search) return;
  if (opts.replace) history.replaceState(null, '', url.pathname + url.search);
  else history.pushState(null, '', url.pathname + url.search);
  const before = pageKey(parseRoute(location.value.pathname, location.value.search));
  location.value = { pathname: url.pathname, search: url.search };
  if (!opts.replace && pageKey(parseRoute(url.pathname, url.search)) !== before) window.scrollTo(0, 0);
}

/** Two URLs with one page key show the same page (a selection changed): the scroll stays. */
function pageKey(r: Route): string {
  return r.name === 'dag' ? `dag/${r.dag_id}/${r.tab}` : r.name;
}

export const query = computed(() => new URLSearchParams(location.value.search));

/** Changes some query parameters of the current URL (an empty or null value removes one). */
export function setQuery(changes: Record<string, string | number | null | undefined>, replace = true): void {
  const q = new URLSearchParams(location.value.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, String(v));
  }
  const s = q.toString();
  navigate(location.value.pathname + (s ? '?' + s : ''), { replace });
}

export const DAG_TABS = ['grid', 'graph', 'gantt', 'code', 'runs', 'backfills'] as const;
export type DagTab = (typeof DAG_TABS)[number];

export type Route =
  | { name: 'login' }
  | { name: 'dags' }
  | { name: 'pools' }
  | { name: 'import-errors' }
  | { name: 'dag'; dag_id: string; tab: DagTab; run_id?: string; task_id?: string; map_index?: number }
  | { name: 'not-found'; path: string };

function dec(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseRoute(pathname: string, search: string): Route {
  const parts = pathname.split('/').filter(Boolean).map(dec);
  if (parts.length === 0) return { name: 'dags' };
  if (parts[0] === 'login' && parts.length === 1) return { name: 'login' };
  if (parts[0] === 'pools' && parts.length === 1) return { name: 'pools' };
  if (parts[0] === 'import-errors' && parts.length === 1) return { name: 'import-errors' };
  if (parts[0] === 'dags' && parts.length === 1) return { name: 'dags' };
  if (parts[0] === 'dags' && parts.length >= 2) {
    const dag_id = parts[1];
    if (parts.length === 2) return { name: 'dag', dag_id, tab: 'grid' };
    if (parts.length === 3 && (DAG_TABS as readonly string[]).includes(parts[2]))
      return { name: 'dag', dag_id, tab: parts[2] as DagTab };
    if (parts[2] === 'runs' && parts.length >= 4) {
      const run_id = parts[3];
      const t = new URLSearchParams(search).get('tab');
      const tab: DagTab = t === 'graph' || t === 'gantt' ? t : 'grid';
      if (parts.length === 4) return { name: 'dag', dag_id, tab, run_id };
      if (parts[4] === 'tasks' && (parts.length === 6 || parts.length === 7)) {
        const mi = parts.length === 7 ? Number(parts[6]) : -1;
        if (Number.isInteger(mi) && mi >= -1)
          return { name: 'dag', dag_id, tab, run_id, task_id: parts[5], map_index: mi };
      }
    }
  }
  return { name: 'not-found', path: pathname };
}

export const route = computed(() => parseRoute(location.value.pathname, location.value.search));

const e = encodeURIComponent;

/** URL builders, so that every link in the app has one spelling. */
export const urls = {
  dags: () => '/',
  dag: (dag_id: string, tab: DagTab = 'grid') => `/dags/${e(dag_id)}` + (tab === 'grid' ? '' : `/${tab}`),
  run: (dag_id: string, run_id: string, tab?: DagTab) =>
    `/dags/${e(dag_id)}/runs/${e(run_id)}` + (tab === 'graph' || tab === 'gantt' ? `?tab=${tab}` : ''),
  task: (dag_id: string, run_id: string, task_id: string, map_index = -1, tab?: DagTab) =>
    `/dags/${e(dag_id)}/runs/${e(run_id)}/tasks/${e(task_id)}` +
    (map_index >= 0 ? `/${map_index}` : '') +
    (tab === 'graph' || tab === 'gantt' ? `?tab=${tab}` : ''),
  pools: () => '/pools',
  importErrors: () => '/import-errors',
  login: (next?: string) => '/login' + (next && next !== '/' ? `?next=${e(next)}` : ''),
};

type LinkProps = Omit<PartialAnchorHTMLAttributes<HTMLAnchorElement>, 'href' | 'role'> & { href: string; children?: ComponentChildren; replace?: boolean };

/** An <a> that navigates in the app on a plain left click and behaves as a link otherwise. */
export function Link({ href, replace, onClick, ...rest }: LinkProps) {
  return (
    <a
      href={href}
      onClick={(ev: TargetedMouseEvent<HTMLAnchorElement>) => {
        if (onClick) (onClick as (ev: TargetedMouseEvent<HTMLAnchorElement>) => void)(ev);
        if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
        ev.preventDefault();
        navigate(href, { replace });
      }}
      {...rest}
    />
  );
}
