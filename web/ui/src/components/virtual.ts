// Window-scroll virtualisation for long lists of fixed-height rows: only the rows in (and near)
// the viewport are rendered, so the DAG list stays fast at thousands of DAGs.
import type { RefObject } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export function useWindowVirtual(count: number, rowHeight: number, ref: RefObject<HTMLElement | null>, overscan = 8): { start: number; end: number } {
  const [range, setRange] = useState({ start: 0, end: Math.min(count, 40) });
  useEffect(() => {
    let frame = 0;
    const measure = () => {
      frame = 0;
      const el = ref.current;
      if (!el) return;
      const top = el.getBoundingClientRect().top; // distance of the list's top from the viewport's
      const first = Math.floor(Math.max(0, -top) / rowHeight);
      const visible = Math.ceil(window.innerHeight / rowHeight);
      const start = Math.max(0, first - overscan);
      const end = Math.min(count, first + visible + overscan);
      setRange((r) => (r.start === start && r.end === end ? r : { start, end }));
    };
    const schedule = () => {
      if (!frame) frame = requestAnimationFrame(measure);
    };
    measure();
    window.addEventListener('scroll', schedule, { passive: true });
    window.addEventListener('resize', schedule);
    return () => {
      window.removeEventListener('scroll', schedule);
      window.removeEventListener('resize', schedule);
      if (frame) cancelAnimationFrame(frame);
    };
  }, [count, rowHeight]);
  return { start: Math.min(range.start, count), end: Math.min(range.end, count) };
}
