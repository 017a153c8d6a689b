// The one way the app talks to the daemon: same-origin fetches of /api/v1 with the session
// cookie, the CSRF token on every mutating request, problem JSON turned into ApiError, and a 401
// sending the user to the login page.
import { signal, computed } from '@preact/signals';
import type { Role, Session } from './types';

export const API = '/api/v1';

/** Who is logged in; null before login (or after a 401). */
export const session = signal<Session | null>(null);
/** Whether the user may change anything (admins and ops; viewers only read). */
export const canEdit = computed(() => {
  const r: Role | undefined = session.value?.role;
  return r === 'admin' || r === 'op';
});
export const isAdmin = computed(() => session.value?.role === 'admin');

/** An RFC 7807 problem the server answered, or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly retryAfter: number | null;
  constructor(status: number, title: string, detail: string, retryAfter: number | null = null) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
  /** The sentence to show a user. */
  get userMessage(): string {
    return this.detail || this.title;
  }
}

/** Called on a 401 from any request but the login and session ones; set by the app. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Do not treat 401 as a lost session (login and session checks). */
  allow401?: boolean;
}

function toUrl(path: string): string {
  if (path.startsWith(API + '/') || path === API) return path;
  if (path.startsWith('/api/')) return path;
  return API + (path.startsWith('/') ? path : '/' + path);
}

async function problem(res: Response): Promise<ApiError> {
  let title = res.statusText || `HTTP ${res.status}`;
  let detail = '';
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      if (j && typeof j === 'object') {
        if (typeof j.title === 'string') title = j.title;
        if (typeof j.detail === 'string') detail = j.detail;
        else if (j.detail !== undefined) detail = JSON.stringify(j.detail);
      }
    } catch {
      detail = text.slice(0, 300);
    }
  } catch {
    /* body unreadable: keep the status line */
  }
  const ra = res.headers.get('Retry-After');
  return new ApiError(res.status, title, detail, ra && /^\d+$/.test(ra) ? Number(ra) : null);
}

export async function request<T = unknown>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  // X-Requested-With tells the server this is the app, so that a 401 carries no Basic challenge
  // (which would make the browser pop up its own password dialog).
  const headers: Record<string, string> = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = session.value?.csrf_token ?? '';
  let res: Response;
  try {
    res = await fetch(toUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'The daemon cannot be reached', 'the request failed: is sluice still running?');
  }
  if (res.status === 401 && !opts.allow401) {
    const e = await problem(res);
    onUnauthorized();
    throw e;
  }
  if (!res.ok) throw await problem(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('Content-Type') || '';
  if (!type.includes('json')) return (await res.text()) as T;
  return (await res.json()) as T;
}

export const api = {
  get: <T = unknown>(path: string, opts?: RequestOptions) => request<T>('GET', path, undefined, opts),
  post: <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body ?? {}, opts),
  patch: <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PATCH', path, body ?? {}, opts),
  put: <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PUT', path, body, opts),
  del: <T = unknown>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, undefined, opts),
};

/** For components that take a fetcher (the log view): a GET of an /api/v1 path or URL. */
export const fetchJson = (url: string): Promise<any> => api.get(url);

/** A path segment. */
export const seg = encodeURIComponent;

/** A query string ("?a=1&b=2", or "" when empty) from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | null | undefined | (string | number)[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, String(x)));
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

/** The path of a task instance (mapped instances get their index). */
export function tiPath(dag_id: string, run_id: string, task_id: string, map_index = -1): string {
  return `/dags/${seg(dag_id)}/dagRuns/${seg(run_id)}/taskInstances/${seg(task_id)}` + (map_index >= 0 ? `/${map_index}` : '');
}

export function runPath(dag_id: string, run_id: string): string {
  return `/dags/${seg(dag_id)}/dagRuns/${seg(run_id)}`;
}

/** A message for any thrown value. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.userMessage;
  if (err instanceof Error) return err.message;
  return String(err);
}
