// The graph view's layout worker: ELK (elkjs, run inside this worker) lays out the graph that
// Graph.tsx posts, off the main thread. One message in, one out; the arrays go back transferred.
import ELK from 'elkjs/lib/elk.bundled.js';
import { layoutGraph, type LayoutInput } from './graphLayout';

const elk = new ELK();
const ctx = self as unknown as { postMessage(m: unknown, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent) => void) | null };

ctx.onmessage = async (e: MessageEvent<{ id: number; input: LayoutInput }>) => {
  const { id, input } = e.data;
  try {
    const r = await layoutGraph(input, elk);
    ctx.postMessage({ id, result: r }, [r.boxes.buffer, r.points.buffer, r.offs.buffer, r.src.buffer, r.dst.buffer]);
  } catch (err) {
    ctx.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
