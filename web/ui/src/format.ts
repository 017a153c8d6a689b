// Dates, durations and numbers as the pages show them. Times are shown in the browser's zone; the
// exact UTC instant is in each element's title.

const pad = (n: number) => String(n).padStart(2, '0');

/** "2026-12-02 07:05:45" in local time, or "—". */
export function fmtDate(iso: string | null | undefined, withSeconds = true): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${s}:${pad(d.getSeconds())}` : s;
}

/** The instant in UTC, for titles. */
export function fmtUtc(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('.000Z', 'Z');
}

/** "1.25 s", "3 min 4 s", "2 h 5 min", "3 d 4 h". */
export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(2) : seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Seconds between two instants (the second defaults to now), or null. */
export function secondsBetween(a: string | null | undefined, b?: string | null): number | null {
  if (!a) return null;
  const t0 = Date.parse(a);
  const t1 = b ? Date.parse(b) : Date.now();
  if (Number.isNaN(t0) || Number.isNaN(t1)) return null;
  return (t1 - t0) / 1000;
}

/** "3 min ago", "in 2 h", "just now". */
export function fmtRelative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = (t - now) / 1000;
  const a = Math.abs(d);
  let txt: string;
  if (a < 45) return d < 0 ? 'just now' : 'in a moment';
  else if (a < 3600) txt = `${Math.round(a / 60)} min`;
  else if (a < 86400) txt = `${Math.round(a / 3600)} h`;
  else txt = `${Math.round(a / 86400)} d`;
  return d < 0 ? `${txt} ago` : `in ${txt}`;
}

export function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A local date-time for <input type="datetime-local"> from an ISO instant. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The ISO instant of an <input type="datetime-local"> value (local time), or null. */
export function fromLocalInput(v: string): string | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function plural(n: number, one: string, many = one + 's'): string {
  return `${fmtCount(n)} ${n === 1 ? one : many}`;
}
