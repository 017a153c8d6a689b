// The graph view's layout worker: ELK (elkjs, run inside this worker) lays out the graph that
// Graph.tsx posts, off the main thread. One message in, one out; the arrays go back transferred.
// { warm: true } asks for a run on a made-up graph first (see warmUp).
import ELK from 'elkjs/lib/elk.bundled.js';
import { layoutGraph, warmUp, type LayoutInput } from './graphLayout';

const elk = new ELK();
const ctx = self as unknown as { postMessage(m: unknown, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent) => void) | null };

ctx.onmessage = async (e: MessageEvent<{ id: number; input?: LayoutInput; warm?: boolean }>) => {
  const { id, input, warm } = e.data;
  try {
    if (warm || !input) {
      await warmUp(elk);
      ctx.postMessage({ id, warmed: true });
      return;
    }
    const r = await layoutGraph(input, elk);
    ctx.postMessage({ id, result: r }, [r.boxes.buffer, r.points.buffer, r.offs.buffer, r.src.buffer, r.dst.buffer]);
  } catch (err) {
    ctx.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
