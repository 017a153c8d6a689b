// The part of a task log that the log view holds: a window of whole lines [start, end) of the
// file's bytes, grown at the top (scroll-back) or the bottom (live tail) a chunk at a time and cut
// at the other end so that memory stays bounded whatever the file's size. Pure logic, no DOM.
import { endState, PLAIN, plainText, type Sgr } from './ansi';

/** UTF-8 length of a string (the server's offsets are bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Columns a line takes in a monospace font: escapes removed, tabs to the next multiple of 8. */
export function displayWidth(line: string): number {
  let s = line;
  if (/[\x00-\x1f\x7f\x9b]/.test(s)) {
    s = plainText(s);
    if (s.includes('\t')) {
      let col = 0;
      for (let i = 0; i < s.length; i++) col = s[i] === '\t' ? col + 8 - (col % 8) : col + 1;
      return col;
    }
  }
  return s.length;
}

export class LogWindow {
  /** Whole lines, without their "\n". */
  lines: string[] = [];
  /** The rendition each line starts in (ANSI colours carry across lines). */
  sgr: Sgr[] = [];
  /** Display width of each line in columns. */
  widths: number[] = [];
  /** The unfinished last line of the file (no "\n" yet), shown after `lines`. Only when attached. */
  partial = '';
  /** Byte offset of lines[0]. */
  start = 0;
  /** Byte offset just after the last byte held (the partial line included). */
  end = 0;
  /** The window reaches the end of what the file had when last read (live tail appends there). */
  attached = true;
  /** The file's size as last reported. */
  size = 0;
  /** The widest line, in columns. */
  maxWidth = 0;
  constructor(readonly maxLines = 200_000) {}

  get count(): number {
    return this.lines.length + (this.partial ? 1 : 0);
  }

  line(i: number): string {
    return i < this.lines.length ? this.lines[i] : this.partial;
  }

  sgrAt(i: number): Sgr {
    if (i < this.sgr.length) return this.sgr[i];
    const n = this.lines.length;
    return n ? endState(this.lines[n - 1], this.sgr[n - 1]) : PLAIN;
  }

  widthAt(i: number): number {
    return i < this.widths.length ? this.widths[i] : displayWidth(this.partial);
  }

  /** Starts over with text that begins at byte `start` (a line start) and reaches the file's end. */
  reset(content: string, start: number, end: number, size: number): void {
    this.lines = [];
    this.sgr = [];
    this.widths = [];
    this.partial = '';
    this.start = start;
    this.end = start;
    this.maxWidth = 0;
    this.attached = true;
    this.append(content, end, size);
  }

  private pushLines(ls: string[]): void {
    let s = this.lines.length ? endState(this.lines[this.lines.length - 1], this.sgr[this.sgr.length - 1]) : PLAIN;
    for (const l of ls) {
      this.lines.push(l);
      this.sgr.push(s);
      const w = displayWidth(l);
      this.widths.push(w);
      if (w > this.maxWidth) this.maxWidth = w;
      s = endState(l, s);
    }
  }

  /**
   * Appends bytes read at the end of the window (live tail): `end` is the continuation token after
   * them. Returns how many lines were dropped at the top to stay within maxLines.
   */
  append(content: string, end: number, size: number): number {
    this.size = Math.max(size, end);
    this.end = end;
    if (!content) return 0;
    const text = this.partial + content;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    this.pushLines(parts);
    return this.trimTop();
  }

  /**
   * Appends a chunk read from `end` that may stop inside a line (scrolling down a window that was
   * cut at the bottom). `last` says the chunk reaches the file's end.
   */
  appendChunk(content: string, chunkEnd: number, size: number): number {
    this.size = size;
    if (chunkEnd >= size) {
      this.attached = true;
      return this.append(content, chunkEnd, size);
    }
    const nl = content.lastIndexOf('\n');
    if (nl < 0) return 0;
    const whole = content.slice(0, nl);
    this.pushLines(whole.split('\n'));
    this.end += utf8Length(whole) + 1;
    return this.trimTop();
  }

  private trimTop(): number {
    const over = this.lines.length - this.maxLines;
    if (over <= 0) return 0;
    let bytes = 0;
    for (let i = 0; i < over; i++) bytes += utf8Length(this.lines[i]) + 1;
    this.lines.splice(0, over);
    this.sgr.splice(0, over);
    this.widths.splice(0, over);
    this.start += bytes;
    this.recomputeMax();
    return over;
  }

  private recomputeMax(): void {
    let m = 0;
    for (const w of this.widths) if (w > m) m = w;
    this.maxWidth = m;
  }

  /**
   * Prepends a chunk read from `from` that ends at this.start. Its first line is cut unless from
   * is 0; that piece is left out (and read with the next chunk). Returns the number of lines added
   * (0 when the chunk holds no whole line: read a bigger one), and how many were dropped at the
   * bottom to stay within maxLines.
   */
  prepend(content: string, from: number): { added: number; dropped: number } {
    let text = content;
    let newStart = from;
    if (from > 0) {
      const nl = text.indexOf('\n');
      if (nl < 0) return { added: 0, dropped: 0 };
      text = text.slice(nl + 1);
      newStart = this.start - utf8Length(text);
    }
    if (text.endsWith('\n')) text = text.slice(0, -1);
    else if (text === '') return { added: 0, dropped: 0 };
    const ls = text.split('\n');
    const sg: Sgr[] = [];
    const ws: number[] = [];
    let s: Sgr = PLAIN;
    for (const l of ls) {
      sg.push(s);
      const w = displayWidth(l);
      ws.push(w);
      if (w > this.maxWidth) this.maxWidth = w;
      s = endState(l, s);
    }
    this.lines = ls.concat(this.lines);
    this.sgr = sg.concat(this.sgr);
    this.widths = ws.concat(this.widths);
    this.start = newStart;
    // The lines that were first take the rendition the new text ends in, until it settles.
    for (let i = ls.length; i < this.lines.length; i++) {
      const want = endState(this.lines[i - 1], this.sgr[i - 1]);
      if (want === this.sgr[i]) break;
      this.sgr[i] = want;
    }
    let dropped = 0;
    const over = this.lines.length - this.maxLines;
    if (over > 0) {
      dropped = over;
      let bytes = utf8Length(this.partial);
      for (let i = this.lines.length - over; i < this.lines.length; i++) bytes += utf8Length(this.lines[i]) + 1;
      this.lines.length -= over;
      this.sgr.length -= over;
      this.widths.length -= over;
      this.partial = '';
      this.end -= bytes;
      this.attached = false;
      this.recomputeMax();
    }
    return { added: ls.length, dropped };
  }
}
