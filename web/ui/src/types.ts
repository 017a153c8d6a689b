// Shapes of the /api/v1 JSON the pages read (Airflow's field names). Only the fields the UI uses
// are listed; the server may send more. The grid route's shapes live in dag/types.ts.

export type Role = 'admin' | 'op' | 'viewer';

export interface Session {
  username: string;
  role: Role;
  csrf_token: string;
  expires?: string | null;
}

export interface Tag {
  name: string;
}

export interface Dag {
  dag_id: string;
  description: string | null;
  is_paused: boolean;
  is_active: boolean;
  fileloc: string;
  file_token: string;
  owners: string[];
  tags: Tag[];
  schedule_interval: { __type: string; value?: string } | null;
  timetable_description?: string | null;
  next_dagrun?: string | null;
  next_dagrun_create_after?: string | null;
  max_active_runs?: number;
  max_active_tasks?: number;
  has_import_errors?: boolean;
  last_parsed_time?: string | null;
}

export interface Param {
  __class?: string;
  value: unknown;
  description?: string | null;
  schema?: unknown;
}

export interface DagDetail extends Dag {
  catchup?: boolean;
  params?: Record<string, Param | unknown>;
  timezone?: string;
  start_date?: string | null;
  end_date?: string | null;
  dag_run_timeout?: unknown;
  doc_md?: string | null;
  /** The content hash of the DAG version, where the server sends it. */
  version?: string | null;
  dag_version?: string | null;
}

export type RunState = 'queued' | 'running' | 'success' | 'failed';

export interface DagRun {
  dag_run_id: string;
  dag_id: string;
  logical_date: string | null;
  execution_date?: string | null;
  start_date: string | null;
  end_date: string | null;
  data_interval_start: string | null;
  data_interval_end: string | null;
  queued_at?: string | null;
  run_type: string;
  state: string;
  external_trigger?: boolean;
  conf: Record<string, unknown> | null;
  note: string | null;
  dag_version?: string | null;
}

export interface TaskInstance {
  task_id: string;
  dag_id: string;
  dag_run_id: string;
  map_index: number;
  state: string | null;
  try_number: number;
  max_tries: number;
  start_date: string | null;
  end_date: string | null;
  duration: number | null;
  hostname: string;
  unixname?: string;
  pool: string;
  pool_slots?: number;
  queue?: string;
  priority_weight?: number;
  operator?: string;
  queued_when: string | null;
  pid?: number | null;
  executor?: string | null;
  exit_code?: number | null;
  rendered_map_index?: string | null;
  rendered_fields?: Record<string, unknown>;
  note?: string | null;
  next_retry_at?: string | null;
}

export interface TaskInstanceRef {
  task_id: string;
  dag_id: string;
  dag_run_id: string;
  execution_date?: string | null;
  map_index?: number;
}

export interface XCom {
  key: string;
  timestamp: string | null;
  task_id: string;
  map_index: number;
  value?: string;
}

export interface Pool {
  name: string;
  slots: number;
  occupied_slots: number;
  running_slots: number;
  queued_slots: number;
  scheduled_slots?: number;
  open_slots: number;
  description: string | null;
}

export interface Backfill {
  id: number;
  dag_id: string;
  from_date: string | null;
  to_date: string | null;
  dag_run_conf: Record<string, unknown> | null;
  is_paused: boolean;
  reprocess_behavior: 'none' | 'failed' | 'completed';
  max_active_runs: number;
  run_backwards: boolean;
  created_at: string | null;
  completed_at: string | null;
  updated_at: string | null;
  /** Sluice extras, where present. */
  state?: string;
  cancelled?: boolean;
}

export interface BackfillDryRun {
  backfills: { logical_date: string | null; action?: string }[];
  total_entries: number;
}

export interface ImportErrorItem {
  import_error_id: number;
  timestamp: string | null;
  filename: string;
  stack_trace: string;
}

export interface Health {
  metadatabase?: { status: string };
  scheduler?: { status: string; latest_scheduler_heartbeat: string | null };
  import_errors?: { count?: number; status?: string } | number;
  [k: string]: unknown;
}

export interface RecentRun {
  dag_run_id: string;
  state: string;
  logical_date: string | null;
}

export interface DagSummary {
  recent: RecentRun[];
  running: number;
  queued: number;
  next_dagrun: string | null;
  /** When the next scheduled run is created (the end of its data interval). */
  next_dagrun_create_after?: string | null;
  timetable_description: string | null;
}
