/**
 * Terminal output: kubectl-style tables and ages, word wrapping, and colour only on a terminal
 * (never when piped, never with NO_COLOR).
 */

/** Where a command writes, and what it knows about the terminal. */
export interface Output {
  /** A line (or lines) of the command's result, on stdout. */
  print(text?: string): void;
  /** A warning or note for the human, on stderr; never part of the result. */
  note(text: string): void;
  /** Whether stdout is a terminal. */
  readonly tty: boolean;
  /** Width to wrap at. */
  readonly width: number;
  readonly style: Style;
}

/** Text styles for terminal output; plain when colour is off (NO_COLOR, not a TTY). */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
  cyan(s: string): string;
}

const plain = (s: string): string => s;
const PLAIN: Style = { bold: plain, dim: plain, red: plain, yellow: plain, green: plain, cyan: plain };
const sgr = (open: number, close: number) => (s: string): string => (s === '' ? s : `\x1b[${open}m${s}\x1b[${close}m`);
const ANSI: Style = { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), yellow: sgr(33, 39), green: sgr(32, 39),
  cyan: sgr(36, 39) };

/** Width used when stdout is not a terminal. */
export const PIPE_WIDTH = 100;

interface Stream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** An Output on real streams: colour and the terminal's width on a TTY, plain 100 columns otherwise. */
export function streamOutput(stdout: Stream, stderr: Stream,
  env: Readonly<Record<string, string | undefined>>): Output {
  const tty = stdout.isTTY === true;
  const colour = tty && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  const warnColour = stderr.isTTY === true && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  return {
    print: (text = '') => {
      stdout.write(`${text}\n`);
    },
    note: (text) => {
      stderr.write(`${warnColour ? ANSI.yellow(text) : text}\n`);
    },
    tty,
    width: tty ? Math.max(40, stdout.columns ?? 80) : PIPE_WIDTH,
    style: colour ? ANSI : PLAIN,
  };
}

/** Visible length of a string that may hold ANSI colour. */
export function visibleLength(s: string): number {
  return Array.from(s.replace(/\x1b\[[0-9;]*m/g, '')).length;
}

/** Rows as kubectl prints them: left-aligned columns, three spaces apart, the last one not padded. */
export function table(rows: readonly (readonly string[])[], indent = ''): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell));
    });
  return rows.map((row) =>
    indent +
    row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell) + 3)))
      .join('').trimEnd()
  );
}

/** A duration as kubectl prints ages: 45s, 3m20s, 15m, 5h10m, 3d4h, 90d, 2y30d. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8)
    return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  const days = Math.floor(hours / 24);
  if (days < 365 * 2) return `${days}d`;
  if (days < 365 * 8)
    return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}

/** Age of a timestamp, kubectl style; "" when there is none. */
export function age(timestamp: string | Date | undefined, now = Date.now()): string {
  if (timestamp === undefined) return '';
  const t = new Date(timestamp).getTime();
  return Number.isNaN(t) ? '' : humanDuration(now - t);
}

/** A short elapsed time with sub-second precision for quick steps: 850ms, 4.2s, 3m20s. */
export function elapsed(fromTimestamp: string | undefined, toTimestamp: string | undefined, now = Date.now()): string {
  if (fromTimestamp === undefined) return '';
  const from = new Date(fromTimestamp).getTime();
  const to = toTimestamp === undefined ? now : new Date(toTimestamp).getTime();
  if (Number.isNaN(from) || Number.isNaN(to)) return '';
  const ms = Math.max(0, to - from);
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')}s`;
  return humanDuration(ms);
}

/** A timestamp with its age: "2026-01-01T10:00:00Z (5m ago)". */
export function when(timestamp: string | undefined, now = Date.now()): string {
  if (timestamp === undefined) return '<none>';
  const a = age(timestamp, now);
  return a === '' ? timestamp : `${timestamp} (${a} ago)`;
}

/** At most `max` characters, with an ellipsis when cut; newlines become spaces. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  const chars = Array.from(flat);
  return chars.length <= max ? flat : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/**
 * Wraps text to `width` columns (indent included), keeping its own line breaks and leading
 * whitespace, breaking at spaces where it can and inside a word only when a word is too long.
 */
export function wrap(text: string, width: number, indent = ''): string[] {
  const room = Math.max(20, width - indent.length);
  const out: string[] = [];
  for (const line of text.replace(/\r\n/g, '\n').replace(/\t/g, '    ').split('\n')) {
    const lead = /^ */.exec(line)?.[0] ?? '';
    const hang = lead.length < room / 2 ? lead : '';
    let rest = Array.from(line);
    if (rest.length <= room) {
      out.push((indent + line).trimEnd());
      continue;
    }
    let first = true;
    while (rest.length > 0) {
      const avail = first ? room : room - hang.length;
      if (rest.length <= avail) {
        out.push((indent + (first ? '' : hang) + rest.join('')).trimEnd());
        break;
      }
      let cut = rest.lastIndexOf(' ', avail);
      if (cut <= (first ? lead.length : 0)) cut = avail;
      out.push(indent + (first ? '' : hang) + rest.slice(0, cut).join('').trimEnd());
      rest = rest.slice(cut);
      while (rest[0] === ' ') rest = rest.slice(1);
      first = false;
    }
  }
  return out;
}

/** A rule with a title: "── Turn 1 · assistant ───────". */
export function heading(title: string, width: number, style: Style): string {
  const text = `── ${title} `;
  return style.bold(text) + style.dim('─'.repeat(Math.max(3, Math.min(width, 100) - visibleLength(text))));
}
