// docker-compose.yml cannot run here (no docker engine), so this checks what
// can go wrong by reading it: every lookahead subcommand, flag and choice it
// uses exists in the CLI as `lookahead ... --help` prints it today, every
// LOOKAHEAD_* variable is read somewhere in src/, every ${VAR} has a value
// in .env.example, and the Dockerfile it builds exists and runs the bin.
// It fails when the compose file names a flag the CLI lacks.

import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseS3TargetUrl } from '../../src/replica/s3/url.ts';

const root = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

// ------------------------------------------------------------ YAML subset

type Yaml = string | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number;
}

/** Strips a comment that starts outside quotes. */
function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || text[i - 1] === ' ')) return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

function scalar(raw: string, no: number): Yaml {
  const s = raw.trim();
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new Error(`line ${no}: unterminated string`);
    return JSON.parse(s) as string;
  }
  if (s.startsWith("'")) return s.slice(1, -1).replace(/''/g, "'");
  if (s.startsWith('[')) {
    // Flow sequence of scalars: JSON-compatible in this file.
    return JSON.parse(s) as Yaml[];
  }
  if (s.startsWith('{') || s.startsWith('&') || s.startsWith('*') || s.startsWith('|') || s.startsWith('>')) {
    throw new Error(`line ${no}: outside the YAML subset this file keeps to: ${s}`);
  }
  return s;
}

/** Block maps, block sequences of scalars or maps, flow sequences of
 * scalars, quoted and plain scalars: the subset docker-compose.yml uses. */
export function parseYamlSubset(text: string): Yaml {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`line ${i + 1}: tab`);
    const body = stripComment(raw);
    if (body.trim() === '') return;
    lines.push({ indent: body.length - body.trimStart().length, text: body.trim(), no: i + 1 });
  });
  let pos = 0;
  function block(indent: number): Yaml {
    const first = lines[pos];
    if (first === undefined) return '';
    if (first.text.startsWith('- ') || first.text === '-') return sequence(indent);
    return map(indent);
  }
  function sequence(indent: number): Yaml[] {
    const out: Yaml[] = [];
    while (pos < lines.length && (lines[pos] as Line).indent === indent && (lines[pos] as Line).text.startsWith('-')) {
      const line = lines[pos] as Line;
      const rest = line.text.slice(1).trim();
      pos++;
      if (rest.includes(': ') || rest.endsWith(':')) throw new Error(`line ${line.no}: maps in sequences are outside the subset`);
      out.push(scalar(rest, line.no));
    }
    return out;
  }
  function map(indent: number): { [key: string]: Yaml } {
    const out: { [key: string]: Yaml } = {};
    while (pos < lines.length && (lines[pos] as Line).indent === indent) {
      const line = lines[pos] as Line;
      const m = /^("[^"]*"|[^:\s][^:]*?):(?:\s+(.*))?$/.exec(line.text);
      if (m === null) throw new Error(`line ${line.no}: expected "key: value", got ${line.text}`);
      const key = (m[1] as string).replace(/^"|"$/g, '');
      if (key in out) throw new Error(`line ${line.no}: duplicate key ${key}`);
      pos++;
      if (m[2] !== undefined && m[2] !== '') {
        out[key] = scalar(m[2], line.no);
        continue;
      }
      const next = lines[pos];
      // "key:" alone: a nested block (deeper, or a sequence at the same
      // indent as compose writes them), or null.
      if (next !== undefined && (next.indent > indent || (next.indent === indent && next.text.startsWith('- ')))) {
        out[key] = block(next.indent);
      } else out[key] = '';
    }
    return out;
  }
  const doc = block(0);
  if (pos !== lines.length) throw new Error(`line ${(lines[pos] as Line).no}: unexpected indentation`);
  return doc;
}

// ------------------------------------------------------------ CLI help

interface CliOption {
  flag: string;
  takesValue: boolean;
  choices?: string[];
}

/** Options of `lookahead <command> --help` as commander prints them. */
function parseHelpOptions(help: string): Map<string, CliOption> {
  const section = help.split(/^Options:\s*$/m)[1] ?? '';
  const entries = section.split(/\n(?=\s{2}-)/);
  const out = new Map<string, CliOption>();
  for (const entry of entries) {
    const m = /^\s*(?:-\w,\s+)?(--[\w-]+)(\s+[<[])?/.exec(entry);
    if (m === null) continue;
    const flat = entry.replace(/\s+/g, ' ');
    const choices = /\(choices: ((?:"[^"]*"(?:, )?)+)/.exec(flat);
    out.set(m[1] as string, {
      flag: m[1] as string,
      takesValue: m[2] !== undefined,
      ...(choices ? { choices: [...(choices[1] as string).matchAll(/"([^"]*)"/g)].map((x) => x[1] as string) } : {}),
    });
  }
  return out;
}

function parseHelpCommands(help: string): Set<string> {
  const section = help.split(/^Commands:\s*$/m)[1] ?? '';
  return new Set([...section.matchAll(/^\s{2}([a-z][\w-]*)/gm)].map((m) => m[1] as string));
}

async function cliHelp(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'src', 'main.ts'), ...args], {
    cwd: root,
    timeout: 60_000,
  });
  return stdout;
}

/** What `lookahead` would refuse in a service's command (empty: nothing). */
function commandProblems(s: Service, options: Map<string, CliOption>, env: Map<string, string>): string[] {
  const problems: string[] = [];
  for (let i = 1; i < s.command.length; i++) {
    const arg = s.command[i] as string;
    if (!arg.startsWith('--')) {
      problems.push(`stray argument ${arg}`);
      continue;
    }
    const [flag, inline] = arg.split('=', 2) as [string, string | undefined];
    const option = options.get(flag);
    if (option === undefined) {
      problems.push(`no ${flag}`);
      continue;
    }
    if (!option.takesValue) continue;
    const raw = inline ?? s.command[++i];
    const value = raw === undefined ? '' : interpolate(raw, env);
    if (value === '' || (inline === undefined && raw?.startsWith('--'))) problems.push(`${flag} needs a value`);
    else if (option.choices && !option.choices.includes(value)) problems.push(`${flag} ${value}: not one of ${option.choices.join(', ')}`);
  }
  return problems;
}

// ------------------------------------------------------------ fixtures

interface Service {
  name: string;
  raw: { [key: string]: Yaml };
  command: string[];
  environment: Record<string, string>;
  isLookahead: boolean;
}

function asMap(v: Yaml | undefined, what: string): { [key: string]: Yaml } {
  if (v === undefined || typeof v === 'string' || Array.isArray(v)) throw new Error(`${what}: expected a map`);
  return v;
}

function strings(v: Yaml | undefined): string[] {
  if (v === undefined || v === '') return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error('expected a list of strings');
  return v as string[];
}

function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`.env.example: not NAME=value: ${line}`);
    out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** ${VAR} and ${VAR:-default} as compose substitutes them. */
function interpolate(value: string, env: Map<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
    return env.get(name) ?? fallback ?? '';
  });
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

let compose: { [key: string]: Yaml };
let services: Service[];
let envExample: Map<string, string>;
let composeText: string;
let topHelp: string;
const commandHelp = new Map<string, Map<string, CliOption>>();

beforeAll(async () => {
  composeText = await readFile(join(root, 'docker-compose.yml'), 'utf8');
  compose = asMap(parseYamlSubset(composeText), 'compose file');
  envExample = parseEnvFile(await readFile(join(root, '.env.example'), 'utf8'));
  services = Object.entries(asMap(compose.services, 'services')).map(([name, v]) => {
    const raw = asMap(v, name);
    const image = typeof raw.image === 'string' ? raw.image : '';
    const build = raw.build === undefined ? undefined : asMap(raw.build, `${name}.build`);
    const env = raw.environment === undefined ? {} : asMap(raw.environment, `${name}.environment`);
    return {
      name,
      raw,
      command: strings(raw.command),
      environment: Object.fromEntries(Object.entries(env).map(([k, val]) => [k, String(val)])),
      isLookahead: build?.dockerfile === 'deploy/Dockerfile' || image.startsWith('lookahead'),
    };
  });
  topHelp = await cliHelp(['--help']);
  const used = new Set(services.filter((s) => s.isLookahead).map((s) => s.command[0] ?? 'serve'));
  for (const command of used) {
    if (!parseHelpCommands(topHelp).has(command)) continue; // reported by the test below
    commandHelp.set(command, parseHelpOptions(await cliHelp([command, '--help'])));
  }
}, 120_000);

describe('YAML subset parser', () => {
  it('reads maps, block and flow lists, quotes and comments', () => {
    const doc = parseYamlSubset('a:\n  b: "x # not a comment"  # comment\n  c:\n    - "1"\n    - two\n  d: ["p", "q"]\ne:\n');
    expect(doc).toEqual({ a: { b: 'x # not a comment', c: ['1', 'two'], d: ['p', 'q'] }, e: '' });
  });
  it('refuses what it does not understand instead of guessing', () => {
    expect(() => parseYamlSubset('a: &anchor x\n')).toThrow('subset');
    expect(() => parseYamlSubset('a:\n\tb: 1\n')).toThrow('tab');
    expect(() => parseYamlSubset('a: 1\na: 2\n')).toThrow('duplicate');
    expect(() => parseYamlSubset('a:\n  - k: v\n')).toThrow('subset');
  });
});

describe('docker-compose.yml', () => {
  it('has a primary and a gateway secondary by default, and a MinIO secondary profile', () => {
    const byName = new Map(services.map((s) => [s.name, s]));
    const role = (s: Service | undefined) => s?.command[s.command.indexOf('--role') + 1];
    expect(role(byName.get('primary'))).toBe('primary');
    expect(role(byName.get('secondary'))).toBe('secondary');
    expect(byName.get('primary')?.raw.profiles).toBeUndefined();
    const minio = byName.get('minio');
    expect(minio?.raw.profiles).toEqual(['minio']);
    expect(String(minio?.raw.image)).toMatch(/^\$\{MINIO_IMAGE\}$|^minio\/minio/);
    expect(interpolate(String(minio?.raw.image), envExample)).toMatch(/^minio\/minio:/);
    expect(minio?.raw.healthcheck).toBeDefined();
    expect(strings(minio?.raw.volumes).some((v) => v.endsWith(':/data'))).toBe(true);
    const toMinio = services.filter((s) => s.isLookahead && s.command.some((a) => a.startsWith('s3://')));
    expect(toMinio.length).toBeGreaterThan(0);
    for (const s of toMinio) expect(s.raw.profiles).toEqual(['minio']);
  });

  it('uses only lookahead commands the CLI has', () => {
    const commands = parseHelpCommands(topHelp);
    for (const s of services.filter((x) => x.isLookahead)) {
      expect(commands, `${s.name}: lookahead ${s.command[0]}`).toContain(s.command[0]);
    }
  });

  it('uses only flags (and choices) that `lookahead <command> --help` lists', () => {
    for (const s of services.filter((x) => x.isLookahead)) {
      const options = commandHelp.get(s.command[0] as string);
      expect(options, `${s.name}: help of ${s.command[0]}`).toBeDefined();
      expect(commandProblems(s, options as Map<string, CliOption>, envExample)).toEqual([]);
    }
  });

  it('would catch a flag, a choice or a missing value the CLI does not accept', () => {
    const serve = commandHelp.get('serve') as Map<string, CliOption>;
    const bad = (command: string[]) => commandProblems({ ...(services[0] as Service), command }, serve, envExample);
    expect(bad(['serve', '--no-such-flag'])).toEqual(['no --no-such-flag']);
    expect(bad(['serve', '--role', 'tertiary'])).toEqual(['--role tertiary: not one of single, primary, secondary']);
    expect(bad(['serve', '--data'])).toEqual(['--data needs a value']);
    expect(bad(['serve', 'stray'])).toEqual(['stray argument stray']);
  });

  it('passes only LOOKAHEAD_* variables the sources read', async () => {
    const sources = (await Promise.all((await sourceFiles(join(root, 'src'))).map((f) => readFile(f, 'utf8')))).join('\n');
    for (const s of services.filter((x) => x.isLookahead)) {
      for (const name of Object.keys(s.environment).filter((n) => n.startsWith('LOOKAHEAD_'))) {
        expect(sources.includes(name), `${s.name}: ${name} is read nowhere in src/`).toBe(true);
      }
    }
  });

  it('takes every ${VAR} from .env.example', () => {
    const uncommented = composeText.split('\n').map(stripComment).join('\n');
    const used = new Set([...uncommented.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-[^}]*)?\}/g)].map((m) => m[1] as string));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(envExample.has(name), `.env.example lacks ${name}`).toBe(true);
    // Ports and credentials come from the env file, not from the compose file.
    for (const s of services) {
      for (const port of strings(s.raw.ports)) expect(port, `${s.name} port`).toMatch(/\$\{[A-Z_]+_PORT\}/);
      for (const [name, value] of Object.entries(s.environment)) {
        if (/KEY|SECRET|PASSWORD|USER/.test(name)) expect(value, `${s.name} ${name}`).toMatch(/^\$\{[A-Z_]+\}$/);
      }
    }
  });

  it('points primaries at secondaries that parse and exist', () => {
    const names = new Set(services.map((s) => s.name));
    for (const s of services.filter((x) => x.isLookahead)) {
      const i = s.command.indexOf('--secondary');
      if (i < 0) continue;
      const url = interpolate(s.command[i + 1] ?? '', envExample);
      const host = url.startsWith('s3://') ? new URL(parseS3TargetUrl(url).endpoint ?? 'http://aws').hostname : new URL(url).hostname;
      expect(names, `${s.name}: --secondary ${url}`).toContain(host);
      const depends = s.raw.depends_on === undefined ? {} : asMap(s.raw.depends_on, 'depends_on');
      expect(Object.keys(depends), `${s.name} waits for ${host}`).toContain(host);
    }
  });

  it('an s3:// secondary is wired into the CLI (createS3Target used outside src/replica/s3)', async () => {
    const uses = services.some((s) => s.isLookahead && s.command.some((a) => a.startsWith('s3://')));
    if (!uses) return;
    const files = (await sourceFiles(join(root, 'src'))).filter((f) => !f.includes(join('replica', 's3')));
    const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    expect(texts.some((t) => t.includes('createS3Target(')), 'the minio profile needs `--secondary s3://...` wired').toBe(true);
  });

  it('declares every named volume and references only defined services', () => {
    const volumes = asMap(compose.volumes, 'volumes');
    const names = new Set(services.map((s) => s.name));
    for (const s of services) {
      for (const v of strings(s.raw.volumes)) {
        const source = v.split(':')[0] as string;
        if (!source.startsWith('.') && !source.startsWith('/')) expect(Object.keys(volumes), `${s.name}: ${v}`).toContain(source);
      }
      const depends = s.raw.depends_on === undefined ? {} : asMap(s.raw.depends_on, 'depends_on');
      for (const d of Object.keys(depends)) expect(names, `${s.name} depends on ${d}`).toContain(d);
    }
  });

  it('builds from deploy/Dockerfile, which runs the bin and copies what exists', async () => {
    const dockerfile = await readFile(join(root, 'deploy', 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20-slim/m);
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "bin\/lookahead\.js"\]/);
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of (m[1] as string).split(/\s+/)) {
        const exists = await stat(join(root, path)).then(() => true, () => false);
        expect(exists, `COPY ${path}`).toBe(true);
      }
    }
    for (const s of services.filter((x) => x.isLookahead)) {
      const build = asMap(s.raw.build, `${s.name}.build`);
      expect(build.dockerfile).toBe('deploy/Dockerfile');
      expect(build.context).toBe('.');
    }
  });
});
