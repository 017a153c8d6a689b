// The top bar: the app name, navigation, the daemon's health, the live-stream state and the user.
import { signal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { api, session } from '../api';
import { logout } from '../auth';
import { fmtRelative, fmtUtc } from '../format';
import { liveStatus } from '../live';
import { Link, route, urls } from '../router';
import type { Health } from '../types';

export const health = signal<Health | null>(null);
export const healthError = signal<string | null>(null);
export const importErrorCount = signal<number | null>(null);

let countedAt = 0;

/** Reads /health, and the import-error count from it (or, when /health does not carry it, from
 * /importErrors at start and at most every 5 minutes: no list is polled). */
export async function refreshHealth(): Promise<void> {
  try {
    const h = await api.get<Health>('/health');
    health.value = h;
    healthError.value = null;
    const ie = h.import_errors;
    if (typeof ie === 'number') importErrorCount.value = ie;
    else if (ie && typeof ie === 'object' && typeof ie.count === 'number') importErrorCount.value = ie.count;
    else if (Date.now() - countedAt > 300_000) {
      countedAt = Date.now();
      const r = await api.get<{ total_entries: number }>('/importErrors?limit=1');
      importErrorCount.value = r.total_entries;
    }
  } catch (err) {
    health.value = null;
    healthError.value = (err as Error).message || 'unreachable';
  }
}

function HealthIndicator() {
  useEffect(() => {
    refreshHealth();
    // Every 30 s while the tab is visible (a hidden tab asks again when it is shown).
    const t = window.setInterval(() => document.hidden || refreshHealth(), 30000);
    const onShow = () => document.hidden || refreshHealth();
    document.addEventListener('visibilitychange', onShow);
    return () => {
      clearInterval(t);
      document.removeEventListener('visibilitychange', onShow);
    };
  }, []);
  const h = health.value;
  const sched = h?.scheduler;
  const db = h?.metadatabase;
  const beat = sched?.latest_scheduler_heartbeat ?? null;
  const schedOk = sched?.status === 'healthy';
  const dbOk = db?.status === 'healthy';
  const ie = importErrorCount.value ?? 0;
  const ok = !!h && schedOk && dbOk;
  const summary = !h
    ? `Daemon unreachable${healthError.value ? `: ${healthError.value}` : ''}`
    : `Scheduler ${sched?.status ?? 'unknown'}${beat ? ` (heartbeat ${fmtRelative(beat)})` : ''}; database ${db?.status ?? 'unknown'}; ${ie} import error${ie === 1 ? '' : 's'}`;
  return (
    <div class="health" data-testid="health" title={summary + (beat ? `\nlast heartbeat ${fmtUtc(beat)}` : '')}>
      <span class={`health-item ${ok ? 'ok' : 'bad'}`}>
        <span aria-hidden="true">{ok ? '●' : '▲'}</span> {ok ? 'Healthy' : h ? 'Unhealthy' : 'Unreachable'}
      </span>
      <span class="sr-only">{summary}</span>
      <span class={`health-item small ${schedOk ? 'ok' : 'bad'}`} aria-hidden="true">
        Scheduler {schedOk ? '✓' : '✗'}
      </span>
      <span class={`health-item small ${dbOk ? 'ok' : 'bad'}`} aria-hidden="true">
        DB {dbOk ? '✓' : '✗'}
      </span>
      {ie > 0 && (
        <Link href={urls.importErrors()} class="health-item small bad" data-testid="import-error-count">
          ▲ {ie} import error{ie === 1 ? '' : 's'}
        </Link>
      )}
    </div>
  );
}

function LiveIndicator() {
  const s = liveStatus.value;
  const text = s === 'open' ? 'Live' : s === 'down' ? 'Reconnecting…' : s === 'connecting' ? 'Connecting…' : 'Offline';
  return (
    <span
      class={`live live-${s}`}
      data-testid="live"
      title={s === 'open' ? 'State changes arrive as they happen' : 'Live updates are interrupted; the page refreshes every 5 s until they are back'}
    >
      <span aria-hidden="true">{s === 'open' ? '◉' : '○'}</span> {text}
    </span>
  );
}

export function Header() {
  const r = route.value;
  const s = session.value;
  const current = (name: string) => (r.name === name || (name === 'dags' && r.name === 'dag') ? 'page' : undefined);
  return (
    <header class="topbar">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Link href="/" class="brand" aria-label="sluice home">
        <span class="brand-mark" aria-hidden="true">
          ≋
        </span>
        sluice
      </Link>
      <nav class="mainnav" aria-label="Main">
        <Link href="/" aria-current={current('dags')}>
          DAGs
        </Link>
        <Link href={urls.pools()} aria-current={current('pools')}>
          Pools
        </Link>
        <Link href={urls.importErrors()} aria-current={current('import-errors')}>
          Import errors
        </Link>
      </nav>
      <div class="topbar-right">
        <HealthIndicator />
        <LiveIndicator />
        {s && (
          <div class="user" data-testid="user">
            <span class="user-name">{s.username}</span>
            <span class={`role role-${s.role}`} data-testid="role">
              {s.role}
            </span>
            {s.username !== 'anonymous' && (
              <button type="button" class="btn btn-small btn-ghost" onClick={logout} data-testid="logout">
                Log out
              </button>
            )}
          </div>
        )}
      </div>
    </header>
  );
}
