// A Lua 5.4 tokenizer for highlighting (not a parser): keywords, names, calls, strings (quoted and
// long brackets), comments (line and long), numbers (decimal, hex, exponents), operators. Any input
// is accepted; an unterminated string or comment runs to where Lua would stop reading it.

export type TokenType =
  | 'keyword'
  | 'constant'
  | 'builtin'
  | 'name'
  | 'call'
  | 'field'
  | 'string'
  | 'comment'
  | 'number'
  | 'op'
  | 'space';

export interface Token {
  type: TokenType;
  text: string;
}

const KEYWORDS = new Set([
  'and',
  'break',
  'do',
  'else',
  'elseif',
  'end',
  'for',
  'function',
  'goto',
  'if',
  'in',
  'local',
  'not',
  'or',
  'repeat',
  'return',
  'then',
  'until',
  'while',
]);
const CONSTANTS = new Set(['true', 'false', 'nil']);
const BUILTINS = new Set([
  'assert',
  'collectgarbage',
  'error',
  'getmetatable',
  'ipairs',
  'next',
  'pairs',
  'pcall',
  'print',
  'rawequal',
  'rawget',
  'rawlen',
  'rawset',
  'require',
  'select',
  'setmetatable',
  'tonumber',
  'tostring',
  'type',
  'xpcall',
  'string',
  'table',
  'math',
  'os',
  'io',
  'utf8',
  'coroutine',
  'self',
  '_G',
  '_ENV',
]);

const OPS3 = ['...'];
const OPS2 = ['==', '~=', '<=', '>=', '//', '::', '<<', '>>', '..'];

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** At src[i] == '[': the level of a long bracket ("[==[" is 2), or -1 when it is not one. */
function longBracketLevel(src: string, i: number): number {
  let j = i + 1;
  while (src[j] === '=') j++;
  return src[j] === '[' ? j - i - 1 : -1;
}

/** The end (exclusive) of a long bracket opened at i with the given level. */
function longBracketEnd(src: string, i: number, level: number): number {
  const close = ']' + '='.repeat(level) + ']';
  const k = src.indexOf(close, i + level + 2);
  return k < 0 ? src.length : k + close.length;
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  const n = src.length;
  let i = 0;
  const push = (type: TokenType, end: number) => {
    const text = src.slice(i, end);
    const last = out[out.length - 1];
    if (last && last.type === type && (type === 'space' || type === 'op')) last.text += text;
    else out.push({ type, text });
    i = end;
  };
  // The previous significant token, to tell a field (a.b, a:b) and a call (f(...)) apart.
  let prevSig: Token | null = null;
  while (i < n) {
    const c = src.charCodeAt(i);
    const ch = src[i];
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12) {
      let j = i + 1;
      while (j < n && /[ \t\n\r\v\f]/.test(src[j])) j++;
      push('space', j);
      continue;
    }
    if (ch === '-' && src[i + 1] === '-') {
      if (src[i + 2] === '[') {
        const level = longBracketLevel(src, i + 2);
        if (level >= 0) {
          push('comment', longBracketEnd(src, i + 2, level));
          continue;
        }
      }
      const nl = src.indexOf('\n', i);
      push('comment', nl < 0 ? n : nl);
      continue;
    }
    if (ch === '[') {
      const level = longBracketLevel(src, i);
      if (level >= 0) {
        push('string', longBracketEnd(src, i, level));
        prevSig = out[out.length - 1];
        continue;
      }
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < n) {
        const d = src[j];
        if (d === '\\') {
          // \z skips the following white space, newlines included; any other escape is 2+ chars.
          if (src[j + 1] === 'z') {
            j += 2;
            while (j < n && /[ \t\n\r\v\f]/.test(src[j])) j++;
            continue;
          }
          if (src[j + 1] === '\r' && src[j + 2] === '\n') j += 3;
          else j += 2;
          continue;
        }
        if (d === ch) {
          j++;
          break;
        }
        if (d === '\n') break; // unfinished string: Lua stops at the line end
        j++;
      }
      push('string', Math.min(j, n));
      prevSig = out[out.length - 1];
      continue;
    }
    if (isDigit(c) || (ch === '.' && isDigit(src.charCodeAt(i + 1)))) {
      let j = i;
      if (ch === '0' && (src[i + 1] === 'x' || src[i + 1] === 'X')) {
        j = i + 2;
        while (j < n && (isHex(src.charCodeAt(j)) || src[j] === '.')) j++;
        if (src[j] === 'p' || src[j] === 'P') {
          j++;
          if (src[j] === '+' || src[j] === '-') j++;
          while (j < n && isDigit(src.charCodeAt(j))) j++;
        }
      } else {
        while (j < n && (isDigit(src.charCodeAt(j)) || src[j] === '.')) j++;
        if (src[j] === 'e' || src[j] === 'E') {
          j++;
          if (src[j] === '+' || src[j] === '-') j++;
          while (j < n && isDigit(src.charCodeAt(j))) j++;
        }
      }
      // A malformed tail ("3x") is part of the number as Lua reads it.
      while (j < n && isNameChar(src.charCodeAt(j))) j++;
      push('number', j);
      prevSig = out[out.length - 1];
      continue;
    }
    if (isNameStart(c)) {
      let j = i + 1;
      while (j < n && isNameChar(src.charCodeAt(j))) j++;
      const word = src.slice(i, j);
      let type: TokenType;
      const afterDot = prevSig !== null && prevSig.type === 'op' && /(^|[^.])[.:]$/.test(prevSig.text);
      if (!afterDot && KEYWORDS.has(word)) type = 'keyword';
      else if (!afterDot && CONSTANTS.has(word)) type = 'constant';
      else {
        // A call: the name is followed by "(", "{" or a string (f"x", f[[x]]), spaces allowed.
        let k = j;
        while (k < n && (src[k] === ' ' || src[k] === '\t')) k++;
        const nx = src[k];
        const call = nx === '(' || nx === '{' || nx === '"' || nx === "'" || (nx === '[' && longBracketLevel(src, k) >= 0);
        if (call) type = 'call';
        else if (afterDot) type = 'field';
        else type = BUILTINS.has(word) ? 'builtin' : 'name';
        if (call && !afterDot && BUILTINS.has(word)) type = 'builtin';
      }
      push(type, j);
      prevSig = out[out.length - 1];
      continue;
    }
    let len = 1;
    if (OPS3.includes(src.slice(i, i + 3))) len = 3;
    else if (OPS2.includes(src.slice(i, i + 2))) len = 2;
    // Operators are pushed one by one so that "a.b" reads its "." alone.
    out.push({ type: 'op', text: src.slice(i, i + len) });
    i += len;
    prevSig = out[out.length - 1];
  }
  return out;
}

/** The tokens cut into lines: a token that spans lines (a long string) is split at each "\n". */
export function tokenLines(src: string): Token[][] {
  const lines: Token[][] = [[]];
  for (const t of tokenize(src)) {
    if (!t.text.includes('\n')) {
      lines[lines.length - 1].push(t);
      continue;
    }
    const parts = t.text.split('\n');
    parts.forEach((p, k) => {
      if (k > 0) lines.push([]);
      if (p) lines[lines.length - 1].push({ type: t.type, text: p.replace(/\r$/, '') });
    });
  }
  // A final newline ends the last line rather than starting one.
  if (lines.length > 1 && lines[lines.length - 1].length === 0 && src.endsWith('\n')) lines.pop();
  return lines;
}
