// Shared pieces of the benchmark: options, selection, markdown formatting.

export interface BenchOptions {
  only: string[] | null;
  seconds: number;
  maxOps: number;
  targets: string[];
  quick: boolean;
  multipartBytes: number;
  largeGetBytes: number;
  largeGetRounds: number;
  delayMs: number;
  json?: string;
  /** `serve --verify-reads` for the single-site lookahead (default: the server's, full). */
  verifyReads?: string;
}

export interface Report {
  lines: string[];
  json: Record<string, unknown>;
}

/** Is the workload `name` chosen by --only (names or prefixes)? */
export function selected(opts: BenchOptions, name: string): boolean {
  return opts.only === null || opts.only.some((o) => name === o || name.startsWith(o));
}

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);
}

export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
