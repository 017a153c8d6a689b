// The import-errors banner of the DAG list (and the full list of the import-errors page): one
// line per broken file, `file:line: message`.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { fmtDate, fmtUtc } from '../format';
import { Link, urls } from '../router';
import type { ImportErrorItem } from '../types';
import { importErrorCount } from './Header';

/** The first line of an import error as `file:line: message`, the file named as the server does. */
export function errorLine(e: ImportErrorItem): string {
  const first = (e.stack_trace || '').split('\n')[0].trim();
  const base = e.filename.split('/').pop() ?? e.filename;
  if (first.startsWith(e.filename) || first.startsWith(base)) return first;
  return `${e.filename}: ${first}`;
}

export async function loadImportErrors(limit = 100): Promise<{ import_errors: ImportErrorItem[]; total_entries: number }> {
  const r = await api.get<{ import_errors: ImportErrorItem[]; total_entries: number }>(`/importErrors?limit=${limit}&order_by=filename`);
  importErrorCount.value = r.total_entries;
  return r;
}

export function ImportErrorBanner() {
  const [errs, setErrs] = useState<{ import_errors: ImportErrorItem[]; total_entries: number } | null>(null);
  const [open, setOpen] = useState(false);
  const count = importErrorCount.value;
  useEffect(() => {
    loadImportErrors(20)
      .then(setErrs)
      .catch(() => setErrs(null));
  }, [count]);
  if (!errs || errs.total_entries === 0) return null;
  const shown = open ? errs.import_errors : errs.import_errors.slice(0, 3);
  return (
    <section class="banner banner-bad" role="alert" aria-label="Import errors" data-testid="import-errors-banner">
      <h2 class="banner-title">
        <span aria-hidden="true">▲ </span>
        {errs.total_entries === 1 ? '1 DAG file failed to import' : `${errs.total_entries} DAG files failed to import`}
        <span class="banner-note"> — other DAGs keep running; a DAG whose new version is broken keeps its last good version.</span>
      </h2>
      <ul class="import-errors">
        {shown.map((e) => (
          <li title={`${e.filename}\nat ${fmtUtc(e.timestamp)}`}>
            <code>{errorLine(e)}</code>
          </li>
        ))}
      </ul>
      <div class="banner-actions">
        {errs.import_errors.length > 3 && (
          <button type="button" class="btn btn-small btn-ghost" onClick={() => setOpen(!open)} aria-expanded={open}>
            {open ? 'Show fewer' : `Show all ${Math.min(errs.import_errors.length, errs.total_entries)}`}
          </button>
        )}
        <Link href={urls.importErrors()} class="btn btn-small btn-ghost">
          Details
        </Link>
      </div>
    </section>
  );
}

export function ImportErrorList({ errors }: { errors: ImportErrorItem[] }) {
  return (
    <ul class="import-error-list">
      {errors.map((e) => (
        <li class="card" data-testid="import-error">
          <div class="card-head">
            <code class="mono">{e.filename}</code>
            <span class="muted small" title={fmtUtc(e.timestamp)}>
              {fmtDate(e.timestamp)}
            </span>
          </div>
          <pre class="stack">{e.stack_trace}</pre>
        </li>
      ))}
    </ul>
  );
}
