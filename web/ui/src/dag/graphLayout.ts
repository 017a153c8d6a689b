// The graph view's layout, run in a web worker (layout.worker.ts): ELK's layered algorithm,
// direction RIGHT. Big graphs are first made smaller for ELK without changing what they show:
//  - a "stack": tasks with the very same upstream and downstream tasks (a wide fan-out) become one
//    ELK node, the tasks set out in rows and columns inside it, its edges drawn once for all;
//  - a "chain": a run of tasks each with exactly one upstream and one downstream neighbour becomes
//    one ELK node, the tasks side by side inside it.
// ELK then orders layers, minimises crossings, places nodes and routes the edges of what is left.
// A component still over HUGE_AT nodes after that goes to d3-dag's Sugiyama layout instead
// (longest-path layers, a cheap ordering, centred layers): on 10,000 nodes it takes a fraction of
// a second where ELK, with every costly phase off already, takes three; ELK packs it with the rest.
// Pure module: no DOM, no worker API; the worker and tests call layoutGraph().
import { coordCenter, decrossDfs, decrossTwoLayer, graph as dagGraph, layeringLongestPath, sugiyama, type MutGraphNode } from 'd3-dag';

export interface LayoutInput {
  /** Node sizes, in the order of the node ids. */
  ids: string[];
  widths: number[];
  height: number;
  /** Edges as pairs of node indices: [from0, to0, from1, to1, ...]. */
  edges: Int32Array | number[];
  /** Compress stacks and chains (defaults to graphs over the size thresholds). */
  compress?: boolean;
}

export interface LayoutBlock {
  kind: 'stack' | 'chain';
  x: number;
  y: number;
  w: number;
  h: number;
  /** Indices of the member nodes. */
  members: number[];
}

export interface LayoutResult {
  /** x, y, w, h of node i at 4i..4i+3 (top-left corner). */
  boxes: Float64Array;
  width: number;
  height: number;
  /** Polyline points of all edges, x/y pairs; edge e uses points [offs[e], offs[e+1]) (pairs). */
  points: Float64Array;
  offs: Int32Array;
  /** Edge ends: a node index, or -(b+1) for block b (a stack's edge drawn once). */
  src: Int32Array;
  dst: Int32Array;
  blocks: LayoutBlock[];
  /** Nodes laid out (after compression), and the time the layout library took (ELK, d3-dag). */
  elkNodes: number;
  elkMs: number;
  totalMs: number;
  /** Which library laid it out: ELK, d3-dag (one component too big for ELK) or both. */
  engine: 'elk' | 'd3-dag' | 'elk+d3-dag';
}

/** The part of elkjs this module uses. */
export interface ElkLike {
  layout(graph: any, args?: any): Promise<any>;
}

export const STACK_MIN = 6; // tasks with the same neighbours before they are stacked
export const STACK_MIN_BIG = 2; // ... in a graph over CHAIN_AT nodes
export const STACK_AT = 200; // graphs with more nodes than this get stacks
export const CHAIN_MIN = 3;
export const CHAIN_AT = 1500; // ... and chains
export const CROSSING_MAX = 4000; // ELK nodes past which crossings are not minimised
export const HUGE_AT = 2500; // component size (super nodes) past which d3-dag lays it out
const TWO_LAYER_MAX = 6000; // ... with one two-layer sweep against crossings up to this size

type ElkEdge = { id: string; sources: string[]; targets: string[] };
const GAP_X = 16;
const GAP_Y = 10;
const PAD = 12;
const HEADER = 20;

function elkOptions(n: number): Record<string, string> {
  const base: Record<string, string> = {
    'elk.algorithm': 'layered',
    'elk.direction': 'RIGHT',
    'elk.spacing.nodeNode': '20',
    'elk.layered.spacing.nodeNodeBetweenLayers': '48',
    'elk.spacing.edgeNode': '10',
    'elk.spacing.edgeEdge': '6',
    'elk.spacing.componentComponent': '40',
    'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
    'elk.omitNodeMicroLayout': 'true',
  };
  if (n <= 400) {
    return {
      ...base,
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.layered.nodePlacement.bk.fixedAlignment': 'BALANCED',
    };
  }
  // Big graphs: the cheapest strategies of each phase.
  return {
    ...base,
    'elk.edgeRouting': 'POLYLINE',
    'elk.layered.thoroughness': '1',
    'elk.layered.layering.strategy': n > 3000 ? 'LONGEST_PATH_SOURCE' : 'NETWORK_SIMPLEX',
    'elk.layered.nodePlacement.strategy': n > 3000 ? 'SIMPLE' : 'LINEAR_SEGMENTS',
    'elk.layered.crossingMinimization.greedySwitch.type': 'OFF',
    // Past a few thousand nodes crossing minimisation is most of ELK's time: the topological
    // order given stands instead.
    ...(n > CROSSING_MAX ? { 'elk.layered.crossingMinimization.strategy': 'NONE' } : {}),
    'elk.layered.compaction.postCompaction.strategy': 'NONE',
  };
}

/**
 * Runs ELK once on a made-up lattice with the options of big graphs (and once on a small one), so
 * that the JIT has compiled ELK's code before a real big graph comes: a 10,000-node layout takes
 * about a third less time after it.
 */
export async function warmUp(elk: ElkLike): Promise<void> {
  const lattice = (layers: number, width: number) => {
    const children = [];
    const edges = [];
    for (let l = 0; l < layers; l++)
      for (let j = 0; j < width; j++) {
        children.push({ id: `n${l * width + j}`, width: 150, height: 44 });
        if (l) {
          edges.push({ id: `e${edges.length}`, sources: [`n${(l - 1) * width + j}`], targets: [`n${l * width + j}`] });
          if (j) edges.push({ id: `e${edges.length}`, sources: [`n${(l - 1) * width + j - 1}`], targets: [`n${l * width + j}`] });
        }
      }
    return { children, edges };
  };
  const pad = { 'elk.separateConnectedComponents': 'false', 'elk.padding': '[top=0,left=0,bottom=0,right=0]' };
  await elk.layout({ id: 'root', layoutOptions: { ...elkOptions(10 * CROSSING_MAX), ...pad }, ...lattice(25, 60) });
  await elk.layout({ id: 'root', layoutOptions: { ...elkOptions(40), ...pad }, ...lattice(5, 8) });
}

/**
 * One big component laid out by d3-dag's Sugiyama layout, left to right, returned in the shape of
 * a laid-out ELK compound (children n<i> at x, y; edges with one section each) so that the ELK
 * result's walk reads it. Null when d3-dag refuses the graph (a cycle): ELK takes it then.
 */
function layoutHuge(nodes: number[], edges: ElkEdge[], ends: [number, number, number, number][], sizes: { w: number; h: number }[]): any | null {
  const g = dagGraph<number, number>();
  const at = new Map<number, MutGraphNode<number, number>>();
  for (const si of nodes) at.set(si, g.node(si));
  for (const e of edges) {
    const k = Number(e.id.slice(1));
    g.link(at.get(ends[k][0])!, at.get(ends[k][1])!, k);
  }
  // d3-dag lays layers out top to bottom: its x is our y and the other way round.
  const layout = sugiyama()
    .layering(layeringLongestPath())
    .decross(nodes.length > TWO_LAYER_MAX ? decrossDfs() : decrossTwoLayer().passes(1))
    .coord(coordCenter())
    .nodeSize((nd: { data: number }) => [sizes[nd.data].h, sizes[nd.data].w] as const)
    .gap([20, 48]);
  let size: { width: number; height: number };
  try {
    size = layout(g);
  } catch {
    return null;
  }
  const children = [];
  for (const nd of g.nodes()) {
    const z = sizes[nd.data];
    children.push({ id: 'n' + nd.data, x: nd.y - z.w / 2, y: nd.x - z.h / 2 });
  }
  const out = [];
  for (const l of g.links()) {
    const a = sizes[l.source.data];
    const b = sizes[l.target.data];
    const pts = l.points;
    const bends = pts.slice(1, -1).map(([x, y]) => ({ x: y, y: x }));
    out.push({
      id: 'e' + l.data,
      sections: [{ startPoint: { x: l.source.y + a.w / 2, y: l.source.x }, endPoint: { x: l.target.y - b.w / 2, y: l.target.x }, bendPoints: bends }],
    });
  }
  return { width: size.height, height: size.width, children, edges: out };
}

interface Super {
  kind: 'node' | 'stack' | 'chain';
  members: number[];
  w: number;
  h: number;
  /** Stack: columns of its grid. */
  cols: number;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export async function layoutGraph(input: LayoutInput, elk: ElkLike): Promise<LayoutResult> {
  const t0 = now();
  const n = input.ids.length;
  const H = input.height;
  // Adjacency, without duplicates, self loops or unknown ends.
  const outs: number[][] = Array.from({ length: n }, () => []);
  const ins: number[][] = Array.from({ length: n }, () => []);
  {
    const seen = new Set<number>();
    const e = input.edges;
    for (let i = 0; i + 1 < e.length; i += 2) {
      const a = e[i];
      const b = e[i + 1];
      if (a === b || a < 0 || b < 0 || a >= n || b >= n) continue;
      const k = a * n + b;
      if (seen.has(k)) continue;
      seen.add(k);
      outs[a].push(b);
      ins[b].push(a);
    }
  }
  const compress = input.compress ?? n > STACK_AT;
  // superOf[i]: the super node holding node i.
  const superOf = new Int32Array(n).fill(-1);
  const supers: Super[] = [];

  if (compress) {
    // Stacks: same sorted upstream and downstream lists.
    const classes = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      if (!ins[i].length && !outs[i].length) continue; // lone tasks stay apart (ELK packs them)
      const key = ins[i].slice().sort((a, b) => a - b).join(',') + '|' + outs[i].slice().sort((a, b) => a - b).join(',');
      const c = classes.get(key);
      if (c) c.push(i);
      else classes.set(key, [i]);
    }
    const min = n > CHAIN_AT ? STACK_MIN_BIG : STACK_MIN;
    for (const members of classes.values()) {
      if (members.length < min) continue;
      let w = 0;
      for (const m of members) w = Math.max(w, input.widths[m]);
      const k = members.length;
      const cols = Math.max(1, Math.min(k, Math.round(Math.sqrt((k * (H + GAP_Y)) / (w + GAP_X)))));
      const rows = Math.ceil(k / cols);
      const s = supers.length;
      supers.push({
        kind: 'stack',
        members,
        w: cols * (w + GAP_X) - GAP_X + 2 * PAD,
        h: rows * (H + GAP_Y) - GAP_Y + 2 * PAD + (k >= STACK_MIN ? HEADER : 0),
        cols,
      });
      for (const m of members) superOf[m] = s;
    }
  }
  if (compress && n > CHAIN_AT) {
    // Chains of plain nodes: a -> b where a has one downstream and b one upstream.
    const next = (i: number) => (outs[i].length === 1 && ins[outs[i][0]].length === 1 && superOf[outs[i][0]] < 0 ? outs[i][0] : -1);
    const prev = (i: number) => (ins[i].length === 1 && outs[ins[i][0]].length === 1 && superOf[ins[i][0]] < 0 ? ins[i][0] : -1);
    for (let i = 0; i < n; i++) {
      if (superOf[i] >= 0 || prev(i) >= 0) continue;
      const chain = [i];
      const inChain = new Set(chain);
      let j = next(i);
      while (j >= 0 && !inChain.has(j)) {
        chain.push(j);
        inChain.add(j);
        j = next(j);
      }
      if (chain.length < CHAIN_MIN) continue;
      let w = -GAP_X;
      for (const m of chain) w += input.widths[m] + GAP_X;
      const s = supers.length;
      supers.push({ kind: 'chain', members: chain, w, h: H, cols: 0 });
      for (const m of chain) superOf[m] = s;
    }
  }
  for (let i = 0; i < n; i++) {
    if (superOf[i] >= 0) continue;
    superOf[i] = supers.length;
    supers.push({ kind: 'node', members: [i], w: input.widths[i], h: H, cols: 0 });
  }

  // The graph ELK sees: one node per super node, edges between distinct super nodes once.
  const S = supers.length;
  const elkEdges: ElkEdge[] = [];
  const edgeEnds: [number, number, number, number][] = []; // super a, super b, node from, node to
  const innerEdges: [number, number][] = [];
  // Connected components of the super graph (union-find, no recursion: ELK's own search for
  // components recurses once per node and overflows the stack at thousands of nodes).
  const parent = new Int32Array(S);
  for (let i = 0; i < S; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  {
    const seen = new Set<number>();
    for (let a = 0; a < n; a++) {
      for (const b of outs[a]) {
        const sa = superOf[a];
        const sb = superOf[b];
        if (sa === sb) {
          innerEdges.push([a, b]);
          continue;
        }
        const k = sa * S + sb;
        if (seen.has(k)) continue;
        seen.add(k);
        elkEdges.push({ id: 'e' + elkEdges.length, sources: ['n' + sa], targets: ['n' + sb] });
        edgeEnds.push([sa, sb, a, b]);
        const ra = find(sa);
        const rb = find(sb);
        if (ra !== rb) parent[ra] = rb;
      }
    }
  }
  const compOf = new Int32Array(S);
  const comps = new Map<number, number[]>();
  for (let i = 0; i < S; i++) {
    const r = find(i);
    const l = comps.get(r);
    if (l) l.push(i);
    else comps.set(r, [i]);
  }
  // The nodes in a topological order (breadth first from the roots, ties by the DAG's own order):
  // ELK takes edges against this order as the ones to reverse (cheaper than its greedy search, and
  // none in a DAG) and, where it skips crossing minimisation, keeps this order within a layer.
  const rank = new Int32Array(S).fill(-1);
  {
    const indeg = new Int32Array(S);
    const outS: number[][] = Array.from({ length: S }, () => []);
    for (const [sa, sb] of edgeEnds) {
      outS[sa].push(sb);
      indeg[sb]++;
    }
    // A super node's own order: its first member's place in the DAG.
    const first = supers.map((x) => Math.min(...(x.members.length > 64 ? [x.members[0]] : x.members)));
    const roots: number[] = [];
    for (let i = 0; i < S; i++) if (!indeg[i]) roots.push(i);
    roots.sort((a, b) => first[a] - first[b]);
    const queue = roots;
    let r = 0;
    for (let q = 0; q < queue.length; q++) {
      const v = queue[q];
      rank[v] = r++;
      const next = outS[v].filter((w) => --indeg[w] === 0).sort((a, b) => first[a] - first[b]);
      for (const w of next) queue.push(w);
    }
    for (let i = 0; i < S; i++) if (rank[i] < 0) rank[i] = r++; // on a cycle
  }
  for (const l of comps.values()) l.sort((a, b) => rank[a] - rank[b]);
  // Each component with edges is laid out by ELK's layered algorithm in a compound node of its own;
  // tasks with no edge at all share one, packed in rows; the root packs the compounds.
  const child = (i: number) => ({ id: 'n' + i, width: supers[i].w, height: supers[i].h });
  const groups: { nodes: number[]; lone: boolean }[] = [];
  const lone: number[] = [];
  for (const l of comps.values()) {
    if (l.length === 1) lone.push(l[0]);
    else groups.push({ nodes: l, lone: false });
  }
  groups.sort((x, y) => y.nodes.length - x.nodes.length);
  if (lone.length) groups.push({ nodes: lone, lone: true });
  groups.forEach((g, k) => g.nodes.forEach((i) => (compOf[i] = k)));
  const groupEdges: (typeof elkEdges)[] = groups.map(() => []);
  elkEdges.forEach((e, k) => groupEdges[compOf[edgeEnds[k][0]]].push(e));
  const loneOptions = {
    'elk.algorithm': 'rectpacking',
    'elk.spacing.nodeNode': '14',
    'elk.aspectRatio': '2',
    'elk.padding': '[top=0,left=0,bottom=0,right=0]',
  };
  const layered = (m: number) => ({ ...elkOptions(m), 'elk.separateConnectedComponents': 'false', 'elk.padding': '[top=0,left=0,bottom=0,right=0]' });
  const t1 = now();
  // Components too big for ELK: laid out by d3-dag now, a box of their size for ELK to pack.
  const huge = new Map<number, any>();
  groups.forEach((g, k) => {
    if (g.lone || g.nodes.length <= HUGE_AT) return;
    const r = layoutHuge(g.nodes, groupEdges[k], edgeEnds, supers);
    if (r) huge.set(k, r);
  });
  let graph: any;
  if (groups.length === 1 && huge.has(0)) {
    graph = null;
  } else if (groups.length === 1) {
    const g = groups[0];
    graph = { id: 'root', layoutOptions: g.lone ? loneOptions : layered(g.nodes.length), children: g.nodes.map(child), edges: groupEdges[0] };
  } else {
    graph = {
      id: 'root',
      layoutOptions: { 'elk.algorithm': 'rectpacking', 'elk.spacing.nodeNode': '48', 'elk.aspectRatio': '1.6', 'elk.padding': '[top=0,left=0,bottom=0,right=0]' },
      children: groups.map((g, k) =>
        huge.has(k)
          ? { id: 'b' + k, width: huge.get(k).width, height: huge.get(k).height }
          : {
              id: 'c' + k,
              layoutOptions: g.lone ? loneOptions : layered(g.nodes.length),
              children: g.nodes.map(child),
              edges: groupEdges[k],
            },
      ),
      edges: [],
    };
  }

  const laid = graph ? await elk.layout(graph) : { ...huge.get(0), id: 'b0' };
  const t2 = now();

  // Absolute places: compound children and edge routes are relative to their compound.
  const pos = new Float64Array(S * 2);
  const routed = new Map<string, { sec: any; dx: number; dy: number }>();
  const walk = (node: any, dx: number, dy: number) => {
    for (const e of node.edges ?? []) routed.set(String(e.id), { sec: e.sections?.[0], dx, dy });
    for (const c of node.children ?? []) {
      const id = String(c.id);
      const x = dx + (c.x ?? 0);
      const y = dy + (c.y ?? 0);
      if (id[0] === 'n') {
        const si = Number(id.slice(1));
        pos[2 * si] = x;
        pos[2 * si + 1] = y;
      } else if (id[0] === 'b') walk(huge.get(Number(id.slice(1))), x, y);
      else walk(c, x, y);
    }
  };
  if (graph) walk(laid, 0, 0);
  else walk(huge.get(0), 0, 0);

  // Back to the tasks: each node's box from its super node's place.
  const boxes = new Float64Array(n * 4);
  const blocks: LayoutBlock[] = [];
  const blockOf = new Int32Array(supers.length).fill(-1);
  supers.forEach((s, si) => {
    const x = pos[2 * si];
    const y = pos[2 * si + 1];
    if (s.kind === 'node') {
      const i = s.members[0];
      boxes.set([x, y, input.widths[i], H], i * 4);
    } else if (s.kind === 'chain') {
      let cx = x;
      for (const m of s.members) {
        boxes.set([cx, y, input.widths[m], H], m * 4);
        cx += input.widths[m] + GAP_X;
      }
      blockOf[si] = blocks.length;
      blocks.push({ kind: 'chain', x, y, w: s.w, h: s.h, members: s.members });
    } else {
      const cw = (s.w - 2 * PAD + GAP_X) / s.cols;
      s.members.forEach((m, k) => {
        const col = k % s.cols;
        const row = Math.floor(k / s.cols);
        boxes.set([x + PAD + col * cw, y + PAD + (s.members.length >= STACK_MIN ? HEADER : 0) + row * (H + GAP_Y), cw - GAP_X, H], m * 4);
      });
      blockOf[si] = blocks.length;
      blocks.push({ kind: 'stack', x, y, w: s.w, h: s.h, members: s.members });
    }
  });

  // Edges: ELK's routes, then the straight links inside chains.
  const pts: number[] = [];
  const offs: number[] = [0];
  const src: number[] = [];
  const dst: number[] = [];
  elkEdges.forEach((e, k) => {
    const r = routed.get(e.id);
    const sec = r?.sec;
    const [sa, sb, a, b] = edgeEnds[k];
    if (sec && r) {
      pts.push(sec.startPoint.x + r.dx, sec.startPoint.y + r.dy);
      for (const p of sec.bendPoints ?? []) pts.push(p.x + r.dx, p.y + r.dy);
      pts.push(sec.endPoint.x + r.dx, sec.endPoint.y + r.dy);
    } else {
      // No route (ELK gave none): a straight line between the boxes' sides.
      pts.push(pos[2 * sa] + supers[sa].w, pos[2 * sa + 1] + supers[sa].h / 2, pos[2 * sb], pos[2 * sb + 1] + supers[sb].h / 2);
    }
    offs.push(pts.length / 2);
    src.push(supers[sa].kind === 'stack' ? -(blockOf[sa] + 1) : a);
    dst.push(supers[sb].kind === 'stack' ? -(blockOf[sb] + 1) : b);
  });
  for (const [a, b] of innerEdges) {
    const sa = superOf[a];
    if (supers[sa].kind === 'stack') continue; // members of a stack are not linked to each other
    pts.push(boxes[a * 4] + boxes[a * 4 + 2], boxes[a * 4 + 1] + H / 2, boxes[b * 4], boxes[b * 4 + 1] + H / 2);
    offs.push(pts.length / 2);
    src.push(a);
    dst.push(b);
  }

  return {
    boxes,
    width: laid.width ?? 0,
    height: laid.height ?? 0,
    points: Float64Array.from(pts),
    offs: Int32Array.from(offs),
    src: Int32Array.from(src),
    dst: Int32Array.from(dst),
    blocks,
    elkNodes: supers.length,
    engine: !huge.size ? 'elk' : graph ? 'elk+d3-dag' : 'd3-dag',
    elkMs: t2 - t1,
    totalMs: now() - t0,
  };
}
