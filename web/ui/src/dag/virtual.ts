// Window math for virtualised views with fixed-size items: which items a viewport shows.

/**
 * The items [first, last) that overlap a viewport at `offset` of `size` pixels along an axis of
 * `count` items of `item` pixels, widened by `overscan` items each side.
 */
export function visibleRange(offset: number, size: number, item: number, count: number, overscan = 0): [number, number] {
  if (count <= 0 || item <= 0) return [0, 0];
  const first = Math.max(0, Math.floor(Math.max(0, offset) / item) - overscan);
  const last = Math.min(count, Math.ceil((Math.max(0, offset) + Math.max(0, size)) / item) + overscan);
  return [Math.min(first, count), Math.max(Math.min(first, count), last)];
}

/**
 * The range to render, snapped to blocks of `block` items so that small scrolls do not re-render:
 * the window only moves when the visible range leaves the rendered one.
 */
export function snappedRange(offset: number, size: number, item: number, count: number, block: number): [number, number] {
  const [a, b] = visibleRange(offset, size, item, count, 0);
  const first = Math.max(0, Math.floor(a / block) * block);
  const last = Math.min(count, Math.ceil(b / block) * block);
  return [first, Math.max(first, last)];
}

/** The scroll offset that brings item i into a viewport (unchanged when it is already in it). */
export function scrollToShow(offset: number, size: number, item: number, i: number, margin = 0): number {
  const top = i * item;
  const bottom = top + item;
  if (top < offset + margin) return Math.max(0, top - margin);
  if (bottom > offset + size - margin) return bottom - size + margin;
  return offset;
}
