// ANSI escape sequences in task logs: SGR colours and attributes become styled segments, every
// other control sequence (cursor moves, erase, OSC titles and links) is dropped. Pure functions, no
// DOM: the log view turns the segments into spans (text nodes, so nothing is parsed as HTML).

/** The graphic rendition in force: immutable, shared between lines while it does not change. */
export interface Sgr {
  /** 0-15: a palette colour (themed by CSS); a string: a CSS colour (256-colour cube, truecolor). */
  fg: number | string | null;
  bg: number | string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
  strike: boolean;
  hidden: boolean;
}

export const PLAIN: Sgr = Object.freeze({
  fg: null,
  bg: null,
  bold: false,
  dim: false,
  italic: false,
  underline: false,
  inverse: false,
  strike: false,
  hidden: false,
}) as Sgr;

export interface Segment {
  text: string;
  /** null: plain text. */
  sgr: Sgr | null;
}

export interface ParsedLine {
  segments: Segment[];
  /** The rendition at the end of the line, which the next line starts with. */
  end: Sgr;
}

const ESC = '\x1b';
const CSI8 = '\x9b';

function isPlain(s: Sgr): boolean {
  return (
    s.fg === null &&
    s.bg === null &&
    !s.bold &&
    !s.dim &&
    !s.italic &&
    !s.underline &&
    !s.inverse &&
    !s.strike &&
    !s.hidden
  );
}

function hex2(n: number): string {
  return (n < 16 ? '0' : '') + n.toString(16);
}

/** A colour of the 256-colour palette: 0-15 stay palette indices, the rest become #rrggbb. */
export function color256(n: number): number | string {
  if (n < 16) return n;
  if (n < 232) {
    const i = n - 16;
    const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
    return '#' + hex2(level(Math.floor(i / 36))) + hex2(level(Math.floor(i / 6) % 6)) + hex2(level(i % 6));
  }
  const g = 8 + (n - 232) * 10;
  return '#' + hex2(g) + hex2(g) + hex2(g);
}

function clampByte(v: number | undefined): number {
  return v === undefined || !Number.isFinite(v) ? 0 : Math.max(0, Math.min(255, Math.floor(v)));
}

/**
 * Applies one SGR parameter string ("1;31", "38;5;208", "38:2::255:0:0", "") to a rendition and
 * returns the new one (the same object when nothing changed).
 */
export function applySgr(cur: Sgr, params: string): Sgr {
  // Parameters are separated by ';'; a ':' groups sub-parameters of one (ITU T.416 form).
  const groups = params === '' ? [''] : params.split(';');
  let s: Sgr | null = null;
  const w = (): Sgr => (s ??= { ...cur });
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi];
    const sub = g.includes(':') ? g.split(':') : null;
    const code = g === '' ? 0 : parseInt(sub ? sub[0] : g, 10);
    if (Number.isNaN(code)) continue;
    if (code === 38 || code === 48) {
      // Extended colour: 5;n or 2;r;g;b, either as following ';' params or as ':' sub-params.
      let args: number[];
      if (sub) {
        args = sub.slice(1).map((x) => (x === '' ? NaN : parseInt(x, 10)));
        // 38:2:<colourspace>:r:g:b has an extra (often empty) field before r.
        if (args[0] === 2 && args.length >= 5) args = [2, args[2], args[3], args[4]];
      } else {
        const mode = parseInt(groups[gi + 1] ?? '', 10);
        const n = mode === 5 ? 1 : mode === 2 ? 3 : 0;
        args = groups.slice(gi + 1, gi + 2 + n).map((x) => parseInt(x, 10));
        gi += 1 + n;
      }
      let c: number | string | null = null;
      if (args[0] === 5 && Number.isFinite(args[1])) c = color256(clampByte(args[1]));
      else if (args[0] === 2) c = '#' + hex2(clampByte(args[1])) + hex2(clampByte(args[2])) + hex2(clampByte(args[3]));
      if (c !== null) {
        if (code === 38) w().fg = c;
        else w().bg = c;
      }
      continue;
    }
    if (code === 0) {
      if (!isPlain(s ?? cur)) s = { ...PLAIN };
    } else if (code === 1) w().bold = true;
    else if (code === 2) w().dim = true;
    else if (code === 3) w().italic = true;
    else if (code === 4 || code === 21) w().underline = true;
    else if (code === 7) w().inverse = true;
    else if (code === 8) w().hidden = true;
    else if (code === 9) w().strike = true;
    else if (code === 22) {
      w().bold = false;
      w().dim = false;
    }
    else if (code === 23) w().italic = false;
    else if (code === 24) w().underline = false;
    else if (code === 27) w().inverse = false;
    else if (code === 28) w().hidden = false;
    else if (code === 29) w().strike = false;
    else if (code >= 30 && code <= 37) w().fg = code - 30;
    else if (code === 39) w().fg = null;
    else if (code >= 40 && code <= 47) w().bg = code - 40;
    else if (code === 49) w().bg = null;
    else if (code >= 90 && code <= 97) w().fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) w().bg = code - 100 + 8;
  }
  if (!s) return cur;
  return isPlain(s) ? PLAIN : s;
}

/**
 * Where the text of a line begins after carriage returns: a progress bar that rewrites itself
 * with "\r" shows its last state, as a terminal would. A "\r" at the very end (CRLF) is dropped.
 */
function afterCarriageReturn(line: string): string {
  let end = line.length;
  while (end > 0 && line.charCodeAt(end - 1) === 13) end--;
  const t = end === line.length ? line : line.slice(0, end);
  const cr = t.lastIndexOf('\r');
  return cr < 0 ? t : t.slice(cr + 1);
}

/**
 * Parses one line (no "\n") that starts in rendition `start`. Lines without escapes return one
 * segment and the same rendition object.
 */
export function parseLine(raw: string, start: Sgr = PLAIN): ParsedLine {
  // Renditions set before the last carriage return still hold after it: apply them first.
  let line = raw;
  let state = start;
  const cr = raw.indexOf('\r');
  if (cr >= 0) {
    const text = afterCarriageReturn(raw);
    if (text.length !== raw.length && raw.includes(ESC)) {
      const before = raw.slice(0, raw.length - text.length);
      state = parseLine(before.replace(/\r/g, ''), state).end;
    }
    line = text;
  }
  const segments: Segment[] = [];
  if (!line.includes(ESC) && !line.includes(CSI8) && !/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) {
    if (line) segments.push({ text: line, sgr: state === PLAIN ? null : state });
    return { segments, end: state };
  }
  let text = '';
  const flush = () => {
    if (text) {
      const last = segments[segments.length - 1];
      const sgr = state === PLAIN ? null : state;
      if (last && last.sgr === sgr) last.text += text;
      else segments.push({ text, sgr });
      text = '';
    }
  };
  const n = line.length;
  let i = 0;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === 0x1b || c === 0x9b) {
      let j = c === 0x9b ? i + 1 : i + 2;
      const kind = c === 0x9b ? '[' : line[i + 1];
      if (kind === '[') {
        // CSI: parameter bytes 0x30-0x3f, intermediates 0x20-0x2f, one final byte 0x40-0x7e.
        const p0 = j;
        while (j < n && line.charCodeAt(j) >= 0x30 && line.charCodeAt(j) <= 0x3f) j++;
        const params = line.slice(p0, j);
        while (j < n && line.charCodeAt(j) >= 0x20 && line.charCodeAt(j) <= 0x2f) j++;
        if (j < n) {
          const fin = line[j];
          if (fin === 'm' && !/[<=>?]/.test(params)) {
            const next = applySgr(state, params);
            if (next !== state) {
              flush();
              state = next;
            }
          }
          j++;
        }
        i = j;
      } else if (kind === ']' || kind === 'P' || kind === '_' || kind === '^' || kind === 'X') {
        // OSC / DCS / APC / PM / SOS: up to BEL or ST (ESC \). The text of an OSC 8 link stays.
        while (j < n) {
          const d = line.charCodeAt(j);
          if (d === 7) {
            j++;
            break;
          }
          if (d === 0x1b && line[j + 1] === '\\') {
            j += 2;
            break;
          }
          j++;
        }
        i = j;
      } else if (kind === '(' || kind === ')' || kind === '*' || kind === '+' || kind === '#' || kind === '%') {
        i = Math.min(n, i + 3); // charset designation: ESC ( B
      } else {
        i = Math.min(n, i + 2); // ESC 7, ESC 8, ESC =, ...
      }
      continue;
    }
    if (c === 9 || c >= 0x20) {
      if (c === 0x7f) {
        i++;
        continue;
      }
      // Copy a run of ordinary characters at once.
      let j = i + 1;
      while (j < n) {
        const d = line.charCodeAt(j);
        if (d === 0x1b || d === 0x9b || d === 0x7f || (d < 0x20 && d !== 9)) break;
        j++;
      }
      text += line.slice(i, j);
      i = j;
      continue;
    }
    if (c === 8) text = text.slice(0, -1); // backspace
    i++; // other C0 controls (BEL, NUL, ...) are not shown
  }
  flush();
  return { segments, end: state };
}

/** The text of a line as shown: escapes and control characters removed. */
export function plainText(raw: string): string {
  const { segments } = parseLine(raw);
  return segments.length === 1 ? segments[0].text : segments.map((s) => s.text).join('');
}

/** The rendition at the end of a line, without building its segments when it has no escape. */
export function endState(raw: string, start: Sgr): Sgr {
  if (!raw.includes(ESC) && !raw.includes(CSI8)) return start;
  return parseLine(raw, start).end;
}

/** CSS for a rendition: class names for the 16 themed colours, inline colours for the others. */
export function sgrStyle(s: Sgr): { cls: string; style: Record<string, string> | null } {
  let fg = s.fg;
  let bg = s.bg;
  if (s.inverse) {
    fg = s.bg ?? 'bg';
    bg = s.fg ?? 'fg';
  }
  const cls: string[] = [];
  let style: Record<string, string> | null = null;
  const st = () => (style ??= {});
  if (typeof fg === 'number') cls.push(`ansi-fg-${fg}`);
  else if (fg === 'bg') cls.push('ansi-fg-inv');
  else if (fg) st().color = fg;
  if (typeof bg === 'number') cls.push(`ansi-bg-${bg}`);
  else if (bg === 'fg') cls.push('ansi-bg-inv');
  else if (bg) st()['background-color'] = bg;
  if (s.bold) cls.push('ansi-bold');
  if (s.dim) cls.push('ansi-dim');
  if (s.italic) cls.push('ansi-italic');
  if (s.underline) cls.push('ansi-underline');
  if (s.strike) cls.push('ansi-strike');
  if (s.hidden) cls.push('ansi-hidden');
  return { cls: cls.join(' '), style };
}
