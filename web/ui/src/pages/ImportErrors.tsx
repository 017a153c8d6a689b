// Every import error in full: the file, when it was seen, and the loader's message.
import { useEffect, useState } from 'preact/hooks';
import { ImportErrorList, loadImportErrors } from '../components/ImportErrorBanner';
import { Empty, ErrorBox, Loading, useTitle } from '../components/ui';
import type { ImportErrorItem } from '../types';

export function ImportErrorsPage() {
  useTitle('Import errors');
  const [data, setData] = useState<{ import_errors: ImportErrorItem[]; total_entries: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    setError(null);
    loadImportErrors(1000).then(setData).catch(setError);
  }, [n]);
  return (
    <div class="page">
      <div class="page-head">
        <h1>Import errors</h1>
        <button type="button" class="btn btn-small" onClick={() => setN(n + 1)}>
          ↻ Refresh
        </button>
      </div>
      <p class="muted">
        A file that fails to import (a syntax error, a cycle, an unknown upstream, a bad cron…) is listed here until it
        imports again. <code>sluice dags check FILE</code> shows the same messages.
      </p>
      <ErrorBox error={error} />
      {!data && !error ? (
        <Loading what="import errors" />
      ) : data && data.total_entries === 0 ? (
        <Empty>✓ Every DAG file imports cleanly.</Empty>
      ) : (
        data && <ImportErrorList errors={data.import_errors} />
      )}
    </div>
  );
}
