// Task and run states: a symbol and a word for each, so that no state is told by colour alone.
// Colours are CSS variables (--state-<name>) set in style.css; the class `state-<name>` paints an
// element with its state's colour.

export const STATES: Record<string, { icon: string; label: string }> = {
  success: { icon: '✓', label: 'success' },
  failed: { icon: '✗', label: 'failed' },
  running: { icon: '▶', label: 'running' },
  queued: { icon: '◷', label: 'queued' },
  scheduled: { icon: '◔', label: 'scheduled' },
  up_for_retry: { icon: '↻', label: 'up for retry' },
  up_for_reschedule: { icon: '⟲', label: 'up for reschedule' },
  upstream_failed: { icon: '⇡', label: 'upstream failed' },
  skipped: { icon: '⊘', label: 'skipped' },
  removed: { icon: '−', label: 'removed' },
  restarting: { icon: '↺', label: 'restarting' },
  deferred: { icon: '⏸', label: 'deferred' },
  none: { icon: '·', label: 'no status' },
};

export const RUN_STATES = ['queued', 'running', 'success', 'failed'] as const;
export const TASK_STATES = [
  'success',
  'failed',
  'running',
  'queued',
  'scheduled',
  'up_for_retry',
  'up_for_reschedule',
  'upstream_failed',
  'skipped',
  'removed',
] as const;

export function stateKey(state: string | null | undefined): string {
  return state && STATES[state] ? state : 'none';
}

export function stateIcon(state: string | null | undefined): string {
  return STATES[stateKey(state)].icon;
}

export function stateLabel(state: string | null | undefined): string {
  return state ? (STATES[state]?.label ?? state) : STATES.none.label;
}

/** A pill: icon + word on the state's colour. */
export function StateBadge({ state, small }: { state: string | null | undefined; small?: boolean }) {
  const k = stateKey(state);
  return (
    <span class={`badge state-${k}${small ? ' badge-small' : ''}`} data-state={k}>
      <span aria-hidden="true" class="badge-icon">
        {STATES[k].icon}
      </span>
      {stateLabel(state)}
    </span>
  );
}

/** A square with the state's icon: for dense lists (recent runs). Its label is the tooltip. */
export function StateSquare({ state, title }: { state: string | null | undefined; title?: string }) {
  const k = stateKey(state);
  return (
    <span class={`sq state-${k}`} data-state={k} title={title ?? stateLabel(state)} role="img" aria-label={title ?? stateLabel(state)}>
      {STATES[k].icon}
    </span>
  );
}
