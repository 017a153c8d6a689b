// Pools: slots and their use; ops and admins resize, create and delete them. Occupancy changes
// with task states, so task_instance events refresh the list (at most once a second).
import { useState } from 'preact/hooks';
import { api, canEdit, errorText, qs, seg } from '../api';
import { Dialog, ErrorBox, Loading, toast, useTitle } from '../components/ui';
import { useThrottledLoad, useLive, usePollWhileDown } from '../live';
import type { Pool } from '../types';

export function PoolsPage() {
  useTitle('Pools');
  const [pools, setPools] = useState<Pool[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [creating, setCreating] = useState(false);
  const load = useThrottledLoad(
    () => {
      api
        .get<{ pools: Pool[] }>(`/pools${qs({ limit: 1000 })}`)
        .then((r) => {
          setPools(r.pools);
          setError(null);
        })
        .catch(setError);
    },
    1000,
    [],
  );
  useLive({
    ti: (e) => {
      if (e.state === 'queued' || e.state === 'running' || e.state === 'success' || e.state === 'failed' || e.state === 'up_for_retry') load();
    },
  });
  usePollWhileDown(load);

  return (
    <div class="page">
      <div class="page-head">
        <h1>Pools</h1>
        {canEdit.value && (
          <button type="button" class="btn btn-primary" onClick={() => setCreating(true)} data-testid="pool-create">
            + New pool
          </button>
        )}
      </div>
      <p class="muted">
        A pool caps how many task instances run at once across DAGs; a task takes <code>pool_slots</code> slots of its{' '}
        <code>pool</code> (default <code>default_pool</code>).
      </p>
      <ErrorBox error={error} retry={load} />
      {!pools && !error ? (
        <Loading what="pools" />
      ) : (
        pools && (
          <div class="table-scroll">
            <table class="table" data-testid="pools-table">
              <thead>
                <tr>
                  <th scope="col">Pool</th>
                  <th scope="col">Slots</th>
                  <th scope="col">Running</th>
                  <th scope="col">Queued</th>
                  <th scope="col">Open</th>
                  <th scope="col">Use</th>
                  <th scope="col">Description</th>
                  {canEdit.value && <th scope="col">Actions</th>}
                </tr>
              </thead>
              <tbody>
                {pools.map((p) => (
                  <PoolRow key={p.name} p={p} onChange={load} />
                ))}
              </tbody>
            </table>
          </div>
        )
      )}
      {creating && <CreatePool onClose={() => setCreating(false)} onDone={load} />}
    </div>
  );
}

function PoolRow({ p, onChange }: { p: Pool; onChange: () => void }) {
  const [editing, setEditing] = useState(false);
  const [slots, setSlots] = useState(String(p.slots));
  const [busy, setBusy] = useState(false);
  const n = Number(slots);
  const bad = !Number.isInteger(n) || n < 0;
  const save = async (ev: Event) => {
    ev.preventDefault();
    if (bad) return;
    setBusy(true);
    try {
      await api.patch(`/pools/${seg(p.name)}?update_mask=slots`, { name: p.name, slots: n });
      toast('ok', `Pool ${p.name}: ${n} slots`);
      setEditing(false);
      onChange();
    } catch (err) {
      toast('error', `Pool ${p.name}: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const del = async () => {
    if (!window.confirm(`Delete pool ${p.name}? Tasks that name it wait until it exists again.`)) return;
    try {
      await api.del(`/pools/${seg(p.name)}`);
      toast('ok', `Pool ${p.name} deleted`);
      onChange();
    } catch (err) {
      toast('error', `Pool ${p.name}: ${errorText(err)}`);
    }
  };
  const used = p.slots > 0 ? Math.min(100, Math.round(((p.running_slots + p.queued_slots) / p.slots) * 100)) : 0;
  return (
    <tr data-testid="pool-row" data-pool={p.name}>
      <th scope="row" class="mono">
        {p.name}
      </th>
      <td>
        {editing ? (
          <form onSubmit={save} class="inline-form">
            <label class="sr-only" for={`slots-${p.name}`}>
              Slots of {p.name}
            </label>
            <input id={`slots-${p.name}`} type="number" min={0} value={slots} onInput={(e) => setSlots((e.target as HTMLInputElement).value)} class="num-input" aria-invalid={bad ? 'true' : 'false'} />
            <button type="submit" class="btn btn-small btn-primary" disabled={busy || bad}>
              Save
            </button>
            <button type="button" class="btn btn-small" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          p.slots.toLocaleString('en-US')
        )}
      </td>
      <td>{p.running_slots}</td>
      <td>{p.queued_slots}</td>
      <td>{p.open_slots}</td>
      <td>
        <span class="meter" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={used} aria-label={`${used}% in use`}>
          <span class="meter-fill" style={{ width: `${used}%` }} />
        </span>
        <span class="small muted"> {used}%</span>
      </td>
      <td>{p.description ?? ''}</td>
      {canEdit.value && (
        <td class="actions">
          {!editing && (
            <button type="button" class="btn btn-small" onClick={() => setEditing(true)} data-testid="pool-edit">
              Edit slots
            </button>
          )}
          {p.name !== 'default_pool' && (
            <button type="button" class="btn btn-small btn-danger-ghost" onClick={del} data-testid="pool-delete">
              Delete
            </button>
          )}
        </td>
      )}
    </tr>
  );
}

function CreatePool({ onClose, onDone }: { onClose: () => void; onDone: () => void }) {
  const [name, setName] = useState('');
  const [slots, setSlots] = useState('4');
  const [desc, setDesc] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const n = Number(slots);
  const nameBad = name !== '' && !/^[A-Za-z0-9_.-]+$/.test(name);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    if (!name || nameBad || !Number.isInteger(n) || n < 0) return;
    setBusy(true);
    try {
      await api.post('/pools', { name, slots: n, description: desc || undefined });
      toast('ok', `Pool ${name} created`);
      onDone();
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title="New pool" onClose={onClose} testid="pool-dialog">
      <form class="form" onSubmit={submit}>
        <div class="field">
          <label for="pool-name">Name</label>
          <input id="pool-name" value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} aria-invalid={nameBad ? 'true' : 'false'} />
          {nameBad && <div class="field-error">✗ Letters, digits, _ . - only.</div>}
        </div>
        <div class="field">
          <label for="pool-slots">Slots</label>
          <input id="pool-slots" type="number" min={0} value={slots} onInput={(e) => setSlots((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="pool-desc">Description</label>
          <input id="pool-desc" value={desc} onInput={(e) => setDesc((e.target as HTMLInputElement).value)} />
        </div>
        {error && (
          <div class="error-box" role="alert">
            ✗ {error}
          </div>
        )}
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy || !name || nameBad}>
            Create pool
          </button>
        </div>
      </form>
    </Dialog>
  );
}
