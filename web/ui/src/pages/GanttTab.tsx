// The Gantt chart of one run: its task instances (GET .../taskInstances), fetched again at most
// once a second while task_instance events for the run arrive.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, qs, runPath } from '../api';
import { Gantt } from '../dag/Gantt';
import type { TaskInstance as GanttTi } from '../dag/types';
import { ErrorBox, Loading } from '../components/ui';
import { throttle, useLive, usePollWhileDown } from '../live';
import type { TaskInstance } from '../types';

export function GanttTab(props: { dag_id: string; run_id: string; onTask: (task_id: string, map_index: number) => void }) {
  const { dag_id, run_id } = props;
  const [tis, setTis] = useState<TaskInstance[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useMemo(
    () =>
      throttle(() => {
        api
          .get<{ task_instances: TaskInstance[] }>(`${runPath(dag_id, run_id)}/taskInstances${qs({ limit: 100000 })}`)
          .then((r) => {
            setTis(r.task_instances);
            setError(null);
          })
          .catch(setError);
      }, 1000),
    [dag_id, run_id],
  );
  useEffect(() => {
    setTis(null);
    load();
    return () => load.cancel();
  }, [load]);
  useLive({
    ti: (e) => {
      if (e.dag_id === dag_id && e.dag_run_id === run_id) load();
    },
  });
  usePollWhileDown(load);
  if (error) return <ErrorBox error={error} retry={load} />;
  if (!tis) return <Loading what="the task instances" />;
  if (!tis.length) return <div class="empty">This run has no task instances yet.</div>;
  return (
    <div class="gantt-wrap" data-testid="gantt">
      <Gantt tis={tis as unknown as GanttTi[]} onTask={props.onTask} />
    </div>
  );
}
