// Small building blocks shared by the pages: dialogs, toasts, error and loading boxes, the pause
// switch, the JSON editor and the pager.
import { signal } from '@preact/signals';
import type { ComponentChildren, TargetedKeyboardEvent } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, canEdit, errorText, seg } from '../api';
import type { Dag } from '../types';

/* ---------- toasts ---------- */

export interface Toast {
  id: number;
  kind: 'ok' | 'error' | 'info';
  text: ComponentChildren;
}

export const toasts = signal<Toast[]>([]);
let toastSeq = 0;

/** Shows a message for a few seconds (errors stay longer). */
export function toast(kind: Toast['kind'], text: ComponentChildren, ms?: number): void {
  const id = ++toastSeq;
  toasts.value = [...toasts.value.slice(-4), { id, kind, text }];
  window.setTimeout(() => dismissToast(id), ms ?? (kind === 'error' ? 10000 : 5000));
}

export function dismissToast(id: number): void {
  toasts.value = toasts.value.filter((t) => t.id !== id);
}

export function Toasts() {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.value.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} data-testid="toast">
          <span class="toast-icon" aria-hidden="true">
            {t.kind === 'ok' ? '✓' : t.kind === 'error' ? '✗' : 'ℹ'}
          </span>
          <div class="toast-text">{t.text}</div>
          <button type="button" class="icon-btn" aria-label="Dismiss" onClick={() => dismissToast(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

/* ---------- dialog ---------- */

/** A modal <dialog>: focus stays inside, Escape closes, the title labels it. */
export function Dialog(props: {
  title: ComponentChildren;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
  wide?: boolean;
  testid?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    const onCancel = (ev: Event) => {
      ev.preventDefault();
      props.onClose();
    };
    d.addEventListener('cancel', onCancel);
    return () => {
      d.removeEventListener('cancel', onCancel);
      if (d.open) d.close();
    };
  }, []);
  return (
    <dialog ref={ref} class={`dialog${props.wide ? ' dialog-wide' : ''}`} aria-labelledby={titleId} data-testid={props.testid}>
      <div class="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" class="icon-btn" aria-label="Close" onClick={props.onClose}>
          ×
        </button>
      </div>
      <div class="dialog-body">{props.children}</div>
      {props.footer && <div class="dialog-foot">{props.footer}</div>}
    </dialog>
  );
}

/* ---------- status boxes ---------- */

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  return (
    <div class="error-box" role="alert">
      <span aria-hidden="true">✗ </span>
      {errorText(error)}
      {retry && (
        <button type="button" class="btn btn-small" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading{what ? ` ${what}` : ''}…
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/* ---------- pause switch ---------- */

/** The pause switch of a DAG (a plain word for viewers). Calls onChange with the new DAG. */
export function PauseToggle({ dag, onChange }: { dag: Pick<Dag, 'dag_id' | 'is_paused'>; onChange?: (d: Dag) => void }) {
  const [busy, setBusy] = useState(false);
  const paused = dag.is_paused;
  if (!canEdit.value)
    return (
      <span class={`pause-word ${paused ? 'is-paused' : 'is-active'}`} data-testid="pause-state">
        {paused ? '⏸ Paused' : '● Active'}
      </span>
    );
  const flip = async () => {
    setBusy(true);
    try {
      const d = await api.patch<Dag>(`/dags/${seg(dag.dag_id)}?update_mask=is_paused`, { is_paused: !paused });
      onChange?.(d);
      toast('ok', `${dag.dag_id} ${d.is_paused ? 'paused' : 'unpaused'}`);
    } catch (err) {
      toast('error', `Cannot ${paused ? 'unpause' : 'pause'} ${dag.dag_id}: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <button
      type="button"
      role="switch"
      aria-checked={!paused}
      aria-label={`${dag.dag_id}: ${paused ? 'paused, click to unpause' : 'active, click to pause'}`}
      title={paused ? 'Paused: no scheduled runs are created. Click to unpause.' : 'Active. Click to pause.'}
      class={`switch ${paused ? 'is-paused' : 'is-active'}`}
      disabled={busy}
      onClick={flip}
      data-testid="pause-toggle"
      data-dag={dag.dag_id}
    >
      <span class="switch-track" aria-hidden="true">
        <span class="switch-knob" />
      </span>
      <span class="switch-text">{paused ? 'Paused' : 'Active'}</span>
    </button>
  );
}

/* ---------- JSON editor ---------- */

/** The result of checking JSON text: the value, or the message and line of the error. */
export function parseJson(text: string, wantObject = true): { ok: true; value: unknown } | { ok: false; message: string } {
  if (!text.trim()) return { ok: true, value: wantObject ? {} : null };
  try {
    const v = JSON.parse(text);
    if (wantObject && (v === null || typeof v !== 'object' || Array.isArray(v)))
      return { ok: false, message: 'The conf must be a JSON object: { "key": value, … }' };
    return { ok: true, value: v };
  } catch (err) {
    let msg = (err as Error).message;
    const m = /position (\d+)/.exec(msg);
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      msg = `Line ${line}, column ${col}: ${msg.replace(/ in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)/, '')}`;
    }
    return { ok: false, message: msg };
  }
}

/** A monospace textarea that validates JSON as the user types. */
export function JsonEditor(props: {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | null;
  rows?: number;
  hint?: ComponentChildren;
}) {
  const errId = `${props.id}-error`;
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <textarea
        id={props.id}
        class={`code-input${props.error ? ' invalid' : ''}`}
        rows={props.rows ?? 10}
        spellcheck={false}
        value={props.value}
        aria-invalid={props.error ? 'true' : 'false'}
        aria-describedby={props.error ? errId : undefined}
        onInput={(e) => props.onInput((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e: TargetedKeyboardEvent<HTMLTextAreaElement>) => {
          if (e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
            // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are not trapped).
            if ((e.currentTarget as HTMLTextAreaElement).dataset.escaped === '1') return;
            e.preventDefault();
            const t = e.currentTarget;
            const s = t.selectionStart;
            t.setRangeText('  ', s, t.selectionEnd, 'end');
            props.onInput(t.value);
          } else {
            (e.currentTarget as HTMLTextAreaElement).dataset.escaped = e.key === 'Escape' ? '1' : '';
            if (e.key === 'Escape') e.stopPropagation();
          }
        }}
      />
      {props.error ? (
        <div id={errId} class="field-error" role="alert" data-testid="json-error">
          ✗ {props.error}
        </div>
      ) : (
        props.hint && <div class="field-hint">{props.hint}</div>
      )}
    </div>
  );
}

/* ---------- pager ---------- */

export function Pager(props: { offset: number; limit: number; total: number; onPage: (offset: number) => void }) {
  const { offset, limit, total } = props;
  if (total <= limit && offset === 0) return null;
  const page = Math.floor(offset / limit) + 1;
  const pages = Math.max(1, Math.ceil(total / limit));
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" class="btn btn-small" disabled={offset === 0} onClick={() => props.onPage(0)}>
        « First
      </button>
      <button type="button" class="btn btn-small" disabled={offset === 0} onClick={() => props.onPage(Math.max(0, offset - limit))}>
        ‹ Newer
      </button>
      <span class="pager-pos">
        Page {page} of {pages} · {total.toLocaleString('en-US')} in all
      </span>
      <button type="button" class="btn btn-small" disabled={offset + limit >= total} onClick={() => props.onPage(offset + limit)}>
        Older ›
      </button>
      <button
        type="button"
        class="btn btn-small"
        disabled={offset + limit >= total}
        onClick={() => props.onPage((pages - 1) * limit)}
      >
        Last »
      </button>
    </nav>
  );
}

/** A copy-to-clipboard button (falls back to selecting nothing when the API is missing). */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="btn btn-small btn-ghost"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
          window.setTimeout(() => setDone(false), 1500);
        } catch {
          toast('error', 'The browser did not allow copying.');
        }
      }}
    >
      {done ? '✓ Copied' : label}
    </button>
  );
}

/** Hook: the page title, "A · B · sluice". */
export function useTitle(...parts: (string | null | undefined | false)[]): void {
  const t = [...parts.filter(Boolean), 'sluice'].join(' · ');
  useEffect(() => {
    document.title = t;
  }, [t]);
}
