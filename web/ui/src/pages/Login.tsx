// The login form. The server's message is shown as it is ("Wrong user name or password."), so it
// never tells which of the two was wrong.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, errorText, session } from '../api';
import { login } from '../auth';
import { navigate, query } from '../router';
import { useTitle } from '../components/ui';

function safeNext(v: string | null): string {
  // Only paths of this app: never an absolute URL to elsewhere.
  if (!v || !v.startsWith('/') || v.startsWith('//') || v.startsWith('/login')) return '/';
  return v;
}

export function LoginPage() {
  useTitle('Log in');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const userRef = useRef<HTMLInputElement>(null);
  const next = safeNext(query.value.get('next'));

  useEffect(() => {
    if (session.value) navigate(next, { replace: true });
    else userRef.current?.focus();
  }, []);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    if (!username || !password) {
      setError('Enter your user name and password.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await login(username, password);
      navigate(next, { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 429)
        setError(`Too many attempts. ${err.retryAfter ? `Try again in ${err.retryAfter} s.` : 'Try again later.'}`);
      else if (err instanceof ApiError && err.status === 401) setError(err.detail || 'Wrong user name or password.');
      else setError(errorText(err));
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="login-page">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title" data-testid="login-form">
        <div class="login-brand" aria-hidden="true">
          ≋
        </div>
        <h1 id="login-title">Log in to sluice</h1>
        {error && (
          <div class="error-box" role="alert" data-testid="login-error">
            {error}
          </div>
        )}
        <div class="field">
          <label for="login-user">User name</label>
          <input
            ref={userRef}
            id="login-user"
            name="username"
            autocomplete="username"
            autocapitalize="none"
            spellcheck={false}
            value={username}
            onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="login-password">Password</label>
          <input
            id="login-password"
            name="password"
            type="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" class="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p class="login-help">
          The first start of the daemon prints the password of <code>admin</code> (also in{' '}
          <code>$SLUICE_HOME/admin_password.txt</code>). More users: <code>sluice users create NAME --role viewer</code>.
        </p>
      </form>
    </main>
  );
}
