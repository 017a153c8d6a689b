// Triggering a run: a conf editor pre-filled from the DAG's params, checked as the user types;
// the server's 400 detail is shown in the dialog.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, errorText, seg } from '../api';
import { fromLocalInput } from '../format';
import type { DagDetail, DagRun, Param } from '../types';
import { Dialog, JsonEditor, Loading, parseJson } from './ui';

/** The default conf of a DAG: its params' values (Airflow sends each as a Param object). */
export function paramDefaults(params: DagDetail['params']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v && typeof v === 'object' && '__class' in (v as object) && 'value' in (v as object)) out[k] = (v as Param).value;
    else out[k] = v;
  }
  return out;
}

/** A param's description and the rules of its schema, in words ("integer, 1 to 31"). */
function describeParam(v: unknown): string {
  if (!v || typeof v !== 'object' || !('__class' in (v as object))) return '';
  const p = v as Param;
  const sch = (p.schema ?? {}) as Record<string, unknown>;
  const rules: string[] = [];
  if (sch.type) rules.push(Array.isArray(sch.type) ? (sch.type as string[]).join(' or ') : String(sch.type));
  if (sch.enum) rules.push(`one of ${(sch.enum as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`);
  if (sch.minimum !== undefined && sch.maximum !== undefined) rules.push(`${sch.minimum} to ${sch.maximum}`);
  else if (sch.minimum !== undefined) rules.push(`at least ${sch.minimum}`);
  else if (sch.maximum !== undefined) rules.push(`at most ${sch.maximum}`);
  if (sch.pattern) rules.push(`matching ${String(sch.pattern)}`);
  if (p.value === undefined || p.value === null) rules.push('required');
  return [p.description, rules.join(', ')].filter(Boolean).join(' — ');
}

export function TriggerDialog(props: { dag_id: string; onClose: () => void; onTriggered: (run: DagRun) => void }) {
  const [details, setDetails] = useState<DagDetail | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [conf, setConf] = useState('');
  const [logical, setLogical] = useState('');
  const [runId, setRunId] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);

  useEffect(() => {
    api
      .get<DagDetail>(`/dags/${seg(props.dag_id)}/details`)
      .then((d) => {
        setDetails(d);
        setConf(JSON.stringify(paramDefaults(d.params), null, 2));
      })
      .catch(setLoadError);
  }, [props.dag_id]);

  const parsed = parseJson(conf);
  const confError = parsed.ok ? null : parsed.message;
  const runIdError = runId && !/^[A-Za-z0-9_.~:+-]+$/.test(runId) ? 'A run id may hold letters, digits and _ . ~ : + - only.' : null;

  const submit = async (ev: Event) => {
    ev.preventDefault();
    if (!parsed.ok || runIdError) return;
    setBusy(true);
    setServerError(null);
    const body: Record<string, unknown> = { conf: parsed.value };
    const ld = fromLocalInput(logical);
    if (ld) body.logical_date = ld;
    if (runId) body.dag_run_id = runId;
    if (note.trim()) body.note = note.trim();
    try {
      const run = await api.post<DagRun>(`/dags/${seg(props.dag_id)}/dagRuns`, body);
      props.onTriggered(run);
    } catch (err) {
      setServerError(err instanceof ApiError ? err.userMessage : errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const params = details ? Object.entries(details.params ?? {}) : [];
  return (
    <Dialog
      title={
        <>
          Trigger <span class="mono">{props.dag_id}</span>
        </>
      }
      onClose={props.onClose}
      wide
      testid="trigger-dialog"
    >
      {loadError ? (
        <div class="error-box" role="alert">
          {errorText(loadError)}
        </div>
      ) : !details ? (
        <Loading what="the DAG's params" />
      ) : (
        <form onSubmit={submit} class="form" data-testid="trigger-form">
          {details.is_paused && (
            <div class="warn-box">⏸ This DAG is paused: the run is created but stays queued until the DAG is unpaused.</div>
          )}
          <JsonEditor
            id="trigger-conf"
            label="Configuration (JSON)"
            value={conf}
            onInput={(v) => {
              setConf(v);
              setServerError(null);
            }}
            error={confError}
            rows={Math.min(16, Math.max(6, conf.split('\n').length + 1))}
            hint={
              params.length
                ? `Pre-filled from the DAG's params (${params.map(([k]) => k).join(', ')}); tasks read them as {{ conf.KEY }} and {{ params.KEY }}.`
                : 'This DAG declares no params; tasks read any key given here as {{ conf.KEY }}.'
            }
          />
          {params.some(([, v]) => describeParam(v)) && (
            <details class="param-help">
              <summary>Params of this DAG</summary>
              <dl class="props">
                {params.map(([k, v]) => (
                  <>
                    <dt class="mono">{k}</dt>
                    <dd>{describeParam(v) || <span class="muted">no description</span>}</dd>
                  </>
                ))}
              </dl>
            </details>
          )}
          <div class="field-row">
            <div class="field">
              <label for="trigger-logical">Logical date (optional)</label>
              <input id="trigger-logical" type="datetime-local" value={logical} onInput={(e) => setLogical((e.target as HTMLInputElement).value)} />
              <div class="field-hint">Default: now. Your browser's time zone.</div>
            </div>
            <div class="field">
              <label for="trigger-runid">Run id (optional)</label>
              <input
                id="trigger-runid"
                value={runId}
                placeholder="manual__<time>"
                aria-invalid={runIdError ? 'true' : 'false'}
                onInput={(e) => setRunId((e.target as HTMLInputElement).value)}
              />
              {runIdError && <div class="field-error">✗ {runIdError}</div>}
            </div>
          </div>
          <div class="field">
            <label for="trigger-note">Note (optional)</label>
            <input id="trigger-note" value={note} maxLength={1000} onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
          </div>
          {serverError && (
            <div class="error-box" role="alert" data-testid="trigger-error">
              ✗ {serverError}
            </div>
          )}
          <div class="dialog-actions">
            <button type="button" class="btn" onClick={props.onClose}>
              Cancel
            </button>
            <button type="submit" class="btn btn-primary" disabled={busy || !!confError || !!runIdError} data-testid="trigger-submit">
              {busy ? 'Triggering…' : '▶ Trigger run'}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
