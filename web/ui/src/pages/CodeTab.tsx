// The DAG's Lua file as the daemon stored it, highlighted, with its version.
import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api';
import { Code } from '../dag/Code';
import { CopyButton, ErrorBox, Loading } from '../components/ui';
import { fmtDate, fmtUtc } from '../format';
import type { DagDetail } from '../types';

interface Source {
  content: string;
  version?: string;
  dag_version?: string;
}

export function CodeTab({ dag }: { dag: DagDetail }) {
  const [src, setSrc] = useState<Source | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setError(null);
    api.get<Source>(`/dagSources/${seg(dag.file_token)}`).then(setSrc).catch(setError);
  }, [dag.file_token]);
  const version = src?.version ?? src?.dag_version ?? dag.version ?? dag.dag_version ?? '';
  return (
    <div class="code-tab" data-testid="code">
      <div class="view-bar">
        <span class="mono small">{dag.fileloc}</span>
        {version && (
          <span class="small" title={version}>
            version <code data-testid="code-version">{version.slice(0, 12)}</code>
          </span>
        )}
        {dag.last_parsed_time && (
          <span class="muted small" title={fmtUtc(dag.last_parsed_time)}>
            parsed {fmtDate(dag.last_parsed_time)}
          </span>
        )}
        {src && <CopyButton text={src.content} label="Copy source" />}
      </div>
      <ErrorBox error={error} />
      {!src && !error ? <Loading what="the source" /> : src && <Code source={src.content} version={version} />}
    </div>
  );
}
