// Clear and mark, for a task instance or a whole run. Each first asks the server for a dry run
// and lists what the change would touch; the change is made only on confirmation.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, errorText, runPath, seg, tiPath } from '../api';
import type { DagRun, TaskInstanceRef } from '../types';
import { StateBadge } from '../states';
import { Dialog, Loading, toast } from './ui';

interface Option {
  key: string;
  label: string;
  hint?: string;
}

/** A dialog that previews a change (dry run) with the chosen options, then makes it. */
function DryRunDialog(props: {
  title: string;
  intro: ComponentChildren;
  options: Option[];
  initial: Record<string, boolean>;
  preview: (opts: Record<string, boolean>) => Promise<TaskInstanceRef[]>;
  commit: (opts: Record<string, boolean>) => Promise<void>;
  verb: string;
  danger?: boolean;
  onClose: () => void;
  testid: string;
}) {
  const [opts, setOpts] = useState(props.initial);
  const [list, setList] = useState<TaskInstanceRef[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    setList(null);
    setError(null);
    props
      .preview(opts)
      .then((l) => live && setList(l))
      .catch((err) => live && setError(errorText(err)));
    return () => {
      live = false;
    };
  }, [JSON.stringify(opts)]);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.commit(opts);
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const n = list?.length ?? 0;
  return (
    <Dialog title={props.title} onClose={props.onClose} wide testid={props.testid}>
      <div class="form">
        <p>{props.intro}</p>
        {props.options.length > 0 && (
          <fieldset class="checks">
            <legend>Include</legend>
            {props.options.map((o) => (
              <label class="check">
                <input
                  type="checkbox"
                  name={o.key}
                  checked={!!opts[o.key]}
                  onChange={(e) => setOpts({ ...opts, [o.key]: (e.target as HTMLInputElement).checked })}
                  data-testid={`opt-${o.key}`}
                />
                <span>
                  {o.label}
                  {o.hint && <span class="muted small"> — {o.hint}</span>}
                </span>
              </label>
            ))}
          </fieldset>
        )}
        <section class="dry-run" aria-live="polite" data-testid="dry-run">
          <h3>
            {list === null && !error
              ? 'Checking what this touches…'
              : `${n} task instance${n === 1 ? '' : 's'} would be ${props.verb === 'Clear' ? 'cleared' : 'changed'}`}
          </h3>
          {list === null && !error ? (
            <Loading />
          ) : (
            list &&
            (n === 0 ? (
              <p class="muted">Nothing to do with these options.</p>
            ) : (
              <ul class="dry-run-list">
                {list.slice(0, 500).map((t) => (
                  <li class="mono" data-testid="dry-run-item">
                    {t.task_id}
                    {t.map_index !== undefined && t.map_index >= 0 ? `[${t.map_index}]` : ''}
                    <span class="muted"> · {t.dag_run_id}</span>
                  </li>
                ))}
                {n > 500 && <li class="muted">… and {n - 500} more</li>}
              </ul>
            ))
          )}
        </section>
        {error && (
          <div class="error-box" role="alert" data-testid="ops-error">
            ✗ {error}
          </div>
        )}
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button
            type="button"
            class={`btn ${props.danger ? 'btn-danger' : 'btn-primary'}`}
            disabled={busy || list === null || n === 0}
            onClick={confirm}
            data-testid="ops-confirm"
          >
            {busy ? 'Working…' : `${props.verb} ${n} task instance${n === 1 ? '' : 's'}`}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

type Refs = { task_instances: TaskInstanceRef[] };

/** Clear one task (all its mapped instances) with downstream/upstream/only-failed options. */
export function ClearTaskDialog(props: { dag_id: string; run_id: string; task_id: string; mapped: boolean; onClose: () => void; onDone: () => void }) {
  const body = (o: Record<string, boolean>, dry_run: boolean) => ({
    dry_run,
    dag_run_id: props.run_id,
    task_ids: [props.task_id],
    include_downstream: !!o.downstream,
    include_upstream: !!o.upstream,
    only_failed: !!o.only_failed,
    only_running: false,
  });
  const url = `/dags/${seg(props.dag_id)}/clearTaskInstances`;
  return (
    <DryRunDialog
      title={`Clear ${props.task_id}`}
      intro={
        <>
          A cleared task instance goes back to no state and runs again (its tries and logs are kept).
          {props.mapped && ' This task is mapped: every one of its instances is cleared.'}
        </>
      }
      options={[
        { key: 'downstream', label: 'Downstream tasks', hint: 'every task that depends on it, recursively' },
        { key: 'upstream', label: 'Upstream tasks', hint: 'every task it depends on' },
        { key: 'only_failed', label: 'Only failed ones', hint: 'leave successful and skipped instances alone' },
      ]}
      initial={{ downstream: true, upstream: false, only_failed: false }}
      preview={(o) => api.post<Refs>(url, body(o, true)).then((r) => r.task_instances)}
      commit={async (o) => {
        const r = await api.post<Refs>(url, body(o, false));
        toast('ok', `Cleared ${r.task_instances.length} task instance${r.task_instances.length === 1 ? '' : 's'}`);
        props.onDone();
      }}
      verb="Clear"
      onClose={props.onClose}
      testid="clear-dialog"
    />
  );
}

/** Mark one task instance (a mapped one by its index) success, failed or skipped. */
export function MarkTaskDialog(props: {
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  state: 'success' | 'failed' | 'skipped';
  onClose: () => void;
  onDone: () => void;
}) {
  const single = props.map_index >= 0;
  const preview = (o: Record<string, boolean>, dry_run: boolean): Promise<TaskInstanceRef[]> =>
    single
      ? api
          .patch<TaskInstanceRef>(tiPath(props.dag_id, props.run_id, props.task_id, props.map_index), { new_state: props.state, dry_run })
          .then((r) => [{ ...r, map_index: props.map_index }])
      : api
          .post<Refs>(`/dags/${seg(props.dag_id)}/updateTaskInstancesState`, {
            dry_run,
            dag_run_id: props.run_id,
            task_id: props.task_id,
            new_state: props.state,
            include_upstream: !!o.upstream,
            include_downstream: !!o.downstream,
          })
          .then((r) => r.task_instances);
  return (
    <DryRunDialog
      title={`Mark ${props.task_id}${single ? `[${props.map_index}]` : ''} as ${props.state}`}
      intro={
        <>
          Sets the state to <StateBadge state={props.state} small /> without running anything.
          {props.state !== 'success' && ' A try under way is stopped.'} Downstream tasks react as if it had ended so.
        </>
      }
      options={single ? [] : [
        { key: 'downstream', label: 'Downstream tasks' },
        { key: 'upstream', label: 'Upstream tasks' },
      ]}
      initial={{ downstream: false, upstream: false }}
      preview={(o) => preview(o, true)}
      commit={async (o) => {
        const l = await preview(o, false);
        toast('ok', `Marked ${l.length} task instance${l.length === 1 ? '' : 's'} ${props.state}`);
        props.onDone();
      }}
      verb="Mark"
      danger={props.state === 'failed'}
      onClose={props.onClose}
      testid="mark-dialog"
    />
  );
}

/** Clear a whole run (or only its failed task instances). */
export function ClearRunDialog(props: { dag_id: string; run_id: string; onClose: () => void; onDone: () => void }) {
  const preview = async (o: Record<string, boolean>, dry_run: boolean): Promise<TaskInstanceRef[]> => {
    if (o.only_failed) {
      const r = await api.post<Refs>(`/dags/${seg(props.dag_id)}/clearTaskInstances`, {
        dry_run,
        dag_run_id: props.run_id,
        only_failed: true,
        include_downstream: !!o.downstream,
      });
      return r.task_instances;
    }
    const r = await api.post<Refs | DagRun>(`${runPath(props.dag_id, props.run_id)}/clear`, { dry_run });
    return 'task_instances' in r ? r.task_instances : [];
  };
  return (
    <DryRunDialog
      title={`Clear run ${props.run_id}`}
      intro="The cleared task instances run again; the run goes back to running. Tries and logs are kept."
      options={[
        { key: 'only_failed', label: 'Only failed and upstream-failed task instances' },
        { key: 'downstream', label: 'With their downstream tasks', hint: 'with "only failed"' },
      ]}
      initial={{ only_failed: true, downstream: true }}
      preview={(o) => preview(o, true)}
      commit={async (o) => {
        const l = await preview(o, false);
        toast('ok', o.only_failed ? `Cleared ${l.length} task instance${l.length === 1 ? '' : 's'}` : `Cleared run ${props.run_id}`);
        props.onDone();
      }}
      verb="Clear"
      onClose={props.onClose}
      testid="clear-run-dialog"
    />
  );
}

/** Mark a whole run success or failed (no dry run exists for this: the dialog says what happens). */
export function MarkRunDialog(props: { dag_id: string; run_id: string; state: 'success' | 'failed'; onClose: () => void; onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const go = async () => {
    setBusy(true);
    try {
      await api.patch(runPath(props.dag_id, props.run_id), { state: props.state });
      toast('ok', `Run marked ${props.state}`);
      props.onDone();
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Mark run as ${props.state}`} onClose={props.onClose} testid="mark-run-dialog">
      <div class="form">
        <p class="mono">{props.run_id}</p>
        <p>
          {props.state === 'success'
            ? 'Every task instance of the run that has not succeeded is marked success; nothing runs.'
            : 'Running tries are stopped and fail; task instances that have not run are skipped; the run fails.'}
        </p>
        {error && (
          <div class="error-box" role="alert">
            ✗ {error}
          </div>
        )}
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="button" class={`btn ${props.state === 'failed' ? 'btn-danger' : 'btn-primary'}`} disabled={busy} onClick={go} data-testid="ops-confirm">
            {busy ? 'Working…' : `Mark ${props.state}`}
          </button>
        </div>
      </div>
    </Dialog>
  );
}
