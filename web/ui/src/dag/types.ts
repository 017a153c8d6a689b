// The shapes the DAG views take, and the state icons they draw (a state is never told by colour
// alone). GridData is the JSON of GET /api/v1/dags/{dag_id}/grid?limit=N&before=RUN_ID.

export interface GridTask {
  task_id: string;
  operator: string;
  mapped: boolean;
  downstream_task_ids: string[];
  trigger_rule: string;
  group: string | null;
}

export interface GridRun {
  dag_run_id: string;
  state: string;
  run_type: string;
  logical_date: string | null;
  start_date: string | null;
  end_date: string | null;
  note: string | null;
  /** states[i] is the state of tasks[i] in this run (a mapped task's summary state). */
  states: (string | null)[];
  tries: number[];
  /** For each mapped task: its instances counted by state. */
  mapped: Record<string, Record<string, number>>;
}

export interface GridData {
  dag_id: string;
  tasks: GridTask[];
  /** Newest first. */
  runs: GridRun[];
  total_runs: number;
  /** The run id to pass as `before` for the next older page, or null at the oldest run. */
  older: string | null;
}

export interface TaskInstance {
  task_id: string;
  map_index: number;
  state: string | null;
  try_number: number;
  start_date: string | null;
  end_date: string | null;
  queued_when: string | null;
  duration: number | null;
  [k: string]: unknown;
}

/** The same symbols as the app's states.tsx. */
export const STATE_ICON: Record<string, string> = {
  success: '✓',
  failed: '✗',
  running: '▶',
  queued: '◷',
  scheduled: '◔',
  up_for_retry: '↻',
  up_for_reschedule: '⟲',
  upstream_failed: '⇡',
  skipped: '⊘',
  removed: '−',
  restarting: '↺',
  deferred: '⏸',
  none: '·',
};

/** The key of a state for class names and icons: unknown and null states are "none". */
export function stateName(s: string | null | undefined): string {
  return s && Object.prototype.hasOwnProperty.call(STATE_ICON, s) ? s : 'none';
}

export function stateIcon(s: string | null): string {
  return STATE_ICON[stateName(s)];
}

/** A state in words, for titles and aria labels. */
export function stateWords(s: string | null | undefined): string {
  return s ? s.replace(/_/g, ' ') : 'no status';
}

/** The order in which a group of states is summarised, the first present winning: the one a user
 * must see first (the grid route ranks a mapped task's instances the same way). */
export const STATE_PRIORITY = [
  'failed',
  'upstream_failed',
  'up_for_retry',
  'up_for_reschedule',
  'restarting',
  'running',
  'deferred',
  'queued',
  'scheduled',
  'none',
  'removed',
  'skipped',
  'success',
];

/** The state that speaks for a set of counts (a mapped task's or a group's). */
export function summaryState(counts: Record<string, number>): string | null {
  for (const s of STATE_PRIORITY) if ((counts[s] ?? 0) > 0) return s === 'none' ? null : s;
  for (const s in counts) if (counts[s] > 0) return s; // a state this list does not know
  return null;
}
