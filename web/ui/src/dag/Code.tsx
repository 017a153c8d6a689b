// A DAG's Lua source, highlighted, with line numbers (not copied with the text) and the version
// hash of the stored file. Clicking a line number marks the line.
import { useMemo, useState } from 'preact/hooks';
import { tokenLines, type Token } from './lua';
import './dag.css';

function Line({ tokens }: { tokens: Token[] }) {
  if (!tokens.length) return <>{'\n'}</>;
  return (
    <>
      {tokens.map((t) => (t.type === 'space' || t.type === 'op' ? t.text : <span class={`lua-${t.type}`}>{t.text}</span>))}
      {'\n'}
    </>
  );
}

export function Code(props: { source: string; version: string }) {
  const lines = useMemo(() => tokenLines(props.source), [props.source]);
  const [mark, setMark] = useState<number | null>(null);
  const width = String(lines.length).length;
  return (
    <figure class="dag-code" data-testid="code-view">
      <figcaption class="dag-code-head">
        <span class="dag-code-lang">Lua</span>
        <span class="muted">
          {lines.length.toLocaleString('en-US')} {lines.length === 1 ? 'line' : 'lines'}
        </span>
        {props.version && (
          <span class="dag-code-version" title={`version ${props.version}`}>
            version <code data-testid="code-view-version">{props.version}</code>
          </span>
        )}
      </figcaption>
      <div class="dag-code-body" style={{ '--ln-width': `${width + 1}ch` }}>
        <div class="dag-code-gutter" aria-hidden="true">
          {lines.map((_, i) => (
            <span class={mark === i ? 'marked' : undefined} onClick={() => setMark(mark === i ? null : i)}>
              {i + 1}
              {'\n'}
            </span>
          ))}
        </div>
        <pre class="dag-code-text" tabIndex={0} aria-label="Source code">
          {mark !== null && <span class="dag-code-mark" style={{ top: `calc(${mark} * var(--code-lh))` }} aria-hidden="true" />}
          <code>
            {lines.map((t) => (
              <Line tokens={t} />
            ))}
          </code>
        </pre>
      </div>
    </figure>
  );
}
