// Entry point: checks the session, then renders the page the URL names.
import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import './style.css';
import { api, errorText, session, setUnauthorizedHandler } from './api';
import { booted, checkSession, sessionLost } from './auth';
import { Header } from './components/Header';
import { Toasts } from './components/ui';
import { setStreamRefusedHandler, useLiveFilter } from './live';
import { DagListPage } from './pages/DagList';
import { DagPage } from './pages/DagPage';
import { ImportErrorsPage } from './pages/ImportErrors';
import { LoginPage } from './pages/Login';
import { NotFoundPage } from './pages/NotFound';
import { PoolsPage } from './pages/Pools';
import { location, navigate, route, urls } from './router';
import { signal } from '@preact/signals';

setUnauthorizedHandler(sessionLost);
setStreamRefusedHandler(() => {
  api.get('/auth/session').catch(() => {});
});

const bootError = signal<string | null>(null);

function Page() {
  const r = route.value;
  // The list and the other pages watch every DAG; a DAG page narrows the stream to its DAG.
  useLiveFilter(r.name === 'dag' ? r.dag_id : null);
  switch (r.name) {
    case 'dags':
      return <DagListPage />;
    case 'dag':
      return <DagPage key={r.dag_id} route={r} />;
    case 'pools':
      return <PoolsPage />;
    case 'import-errors':
      return <ImportErrorsPage />;
    case 'login':
      return null;
    default:
      return <NotFoundPage />;
  }
}

function App() {
  const r = route.value;
  const s = session.value;
  useEffect(() => {
    if (booted.value && !s && r.name !== 'login') {
      const here = location.value.pathname + location.value.search;
      navigate(urls.login(here), { replace: true });
    }
  }, [booted.value, s, r.name]);

  if (!booted.value)
    return bootError.value ? (
      <main id="main" class="boot-error">
        <div role="alert">
        <h1>sluice cannot be reached</h1>
        <p>{bootError.value}</p>
        </div>
        <button type="button" class="btn" onClick={() => start()}>
          Try again
        </button>
      </main>
    ) : (
      <div class="boot" aria-busy="true" />
    );
  if (r.name === 'login' || !s) return <LoginPage />;
  return (
    <>
      <Header />
      <main id="main" class="main" tabIndex={-1}>
        <Page />
      </main>
      <Toasts />
    </>
  );
}

async function start(): Promise<void> {
  bootError.value = null;
  try {
    await checkSession();
  } catch (err) {
    bootError.value = errorText(err);
  }
}

render(<App />, document.getElementById('app')!);
start();
