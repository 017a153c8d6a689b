// Logging in and out, and the session check at start.
import { signal } from '@preact/signals';
import { ApiError, api, session } from './api';
import { startLive, stopLive } from './live';
import { location, navigate, urls } from './router';
import type { Session } from './types';

/** False until the first session check has answered. */
export const booted = signal(false);

/** Asks the daemon who is logged in. */
export async function checkSession(): Promise<void> {
  try {
    const s = await api.get<Session>('/auth/session', { allow401: true });
    session.value = s;
    startLive();
    booted.value = true;
  } catch (err) {
    session.value = null;
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    booted.value = true;
  }
}

export async function login(username: string, password: string): Promise<Session> {
  const s = await api.post<Session>('/auth/login', { username, password }, { allow401: true });
  session.value = s;
  startLive();
  return s;
}

export async function logout(): Promise<void> {
  try {
    await api.post('/auth/logout', {}, { allow401: true });
  } catch {
    /* the cookie is cleared or gone either way */
  }
  session.value = null;
  stopLive();
  navigate(urls.login(), { replace: true });
}

/** A request answered 401: the session ended (expired, or logged out in another tab). */
export function sessionLost(): void {
  if (!session.value && location.value.pathname === '/login') return;
  session.value = null;
  stopLive();
  const here = location.value.pathname + location.value.search;
  if (location.value.pathname !== '/login') navigate(urls.login(here), { replace: true });
}
