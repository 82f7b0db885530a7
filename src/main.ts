// `lookahead`: the command-line entry point and composition root.

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultPredictorConfig, parsePredictorNames } from './predict/predictions.ts';
import { adminCall } from './cli/admin-client.ts';
import { addAdminOptions, adminEndpoint, defaultListen, fail, type AdminFlags } from './cli/admin-options.ts';
import { addFailoverCommands } from './cli/failover-commands.ts';
import { startSite, type RunningSite, type SiteConfig } from './cli/site.ts';
import { copyDeferLagMsDefault, copyDeferLagMsMax } from './core/limits.ts';
import { copyPriorities, type CopyPriority } from './replica/index.ts';


function parseListen(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = at > 0 ? value.slice(0, at) : '127.0.0.1';
  const port = Number(at >= 0 ? value.slice(at + 1) : value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`not HOST:PORT: ${value}`);
  }
  return { host, port };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').filter(Boolean)];
}

interface ServeFlags {
  data: string;
  listen: string;
  role: SiteConfig['role'];
  region: string;
  baseDomain?: string;
  keysFile?: string;
  anonymousRead: string[];
  logLevel: string;
  secondary?: string;
  primaryUrl?: string;
  replicationSecret?: string;
  onSecondaryDown?: 'degraded' | 'refuse';
  syncCopyOnMiss?: boolean;
  copyPriority?: CopyPriority;
  copyLagMaxMs?: number;
  recordEntriesMax?: number;
  predictors?: string;
  tlsCert?: string;
  tlsKey?: string;
  promote?: boolean;
  rejoinFrom?: string;
  forcePrimary?: boolean;
  verifyReads?: 'full' | 'size';
}

function replicationConfig(flags: ServeFlags): SiteConfig['replication'] {
  if (flags.role === 'single') return undefined;
  const secret = flags.replicationSecret ?? process.env.LOOKAHEAD_REPLICATION_SECRET;
  if (flags.role === 'primary' && !flags.secondary && !flags.rejoinFrom) fail('--role primary needs --secondary URL');
  const plainS3 = flags.secondary?.startsWith('s3://') ?? false;
  if (!secret && !plainS3) fail(`--role ${flags.role} needs --replication-secret (or LOOKAHEAD_REPLICATION_SECRET)`);
  return {
    ...(secret ? { secret } : {}),
    onSecondaryDown: flags.onSecondaryDown ?? 'degraded',
    ...(flags.syncCopyOnMiss ? { syncCopyOnMiss: true } : {}),
    predictors: flags.predictors !== undefined
      ? { ...defaultPredictorConfig, enabled: parsePredictorNames(flags.predictors) }
      : defaultPredictorConfig,
    ...(flags.secondary ? { secondaryUrl: flags.secondary } : {}),
    ...(flags.primaryUrl ?? flags.rejoinFrom ? { primaryUrl: flags.primaryUrl ?? flags.rejoinFrom } : {}),
    ...(flags.recordEntriesMax ? { recordEntriesMax: flags.recordEntriesMax } : {}),
    ...(flags.copyPriority ? { copyPriority: flags.copyPriority } : {}),
    ...(flags.copyLagMaxMs !== undefined ? { copyLagMaxMs: flags.copyLagMaxMs } : {}),
  };
}

const syncCopyHelp =
  'primary: acknowledge a write that missed the record only once its data (or delete) is on the secondary too (claim 2; hits stay asynchronous)';

const copyPriorityHelp =
  'primary: background = client writes first: copies wait while clients are busy, at most --copy-lag-max-ms, then go at full speed; ' +
  'eager = copies go as soon as they can (record messages and --sync-copy-on-miss copies are never held)';

function lagMs(value: string): number {
  const n = positiveInt(value);
  if (n > copyDeferLagMsMax) throw new InvalidArgumentError(`at most ${copyDeferLagMsMax} ms: ${value}`);
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`not a positive integer: ${value}`);
  return n;
}

function siteConfig(flags: ServeFlags): SiteConfig {
  const { host, port } = parseListen(flags.listen);
  return {
    role: flags.role,
    dataDir: resolve(flags.data),
    host,
    port,
    region: flags.region,
    anonymousReadBuckets: flags.anonymousRead,
    logLevel: flags.logLevel,
    env: process.env,
    ...(flags.role !== 'single' ? { replication: replicationConfig(flags) } : {}),
    ...(flags.baseDomain ? { baseDomain: flags.baseDomain } : {}),
    ...(flags.keysFile ? { keysFile: resolve(flags.keysFile) } : {}),
    ...tlsConfig(flags),
    ...failoverFlags(flags),
    ...(flags.verifyReads ? { verifyReads: flags.verifyReads } : {}),
  };
}

function failoverFlags(flags: ServeFlags): Pick<SiteConfig, 'failover'> {
  if (flags.promote && flags.role !== 'secondary') fail('--promote goes with --role secondary');
  if (!flags.promote && !flags.rejoinFrom && !flags.forcePrimary) return {};
  return {
    failover: {
      ...(flags.promote ? { promote: true } : {}),
      ...(flags.rejoinFrom ? { rejoinFrom: flags.rejoinFrom } : {}),
      ...(flags.forcePrimary ? { forcePrimary: true } : {}),
    },
  };
}

function tlsConfig(flags: ServeFlags): Pick<SiteConfig, 'tls'> {
  if (!flags.tlsCert && !flags.tlsKey) return {};
  if (!flags.tlsCert || !flags.tlsKey) fail('--tls-cert and --tls-key go together');
  return { tls: { certFile: resolve(flags.tlsCert), keyFile: resolve(flags.tlsKey) } };
}

/** The secret is printed once, when it was just generated: a secret the
 * operator supplied (or one from an earlier start) stays out of stdout, which
 * often ends up in container logs. */
function printSite(site: RunningSite, label: string, showSecret = site.credentialsGenerated): void {
  console.log(`lookahead listening on ${site.endpoint} (${label})`);
  const { accessKeyId, secretAccessKey } = site.credentials;
  console.log(`  access key: ${accessKeyId}`);
  console.log(
    showSecret
      ? `  secret key: ${secretAccessKey}   (generated, stored in the data dir)`
      : `  secret key: not shown (LOOKAHEAD_SECRET_KEY, or credentials.json in the data dir)`,
  );
}

function stopOnSignals(sites: RunningSite[]): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`lookahead: ${signal}, shutting down`);
    void Promise.allSettled(sites.map((s) => s.close())).then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function addSiteOptions(cmd: Command): Command {
  return cmd
    .option('--region <region>', 'region reported for buckets', 'us-east-1')
    .option('--base-domain <domain>', 'enable virtual-host style requests: BUCKET.<domain>')
    .option('--keys-file <file>', 'extra access keys (JSON or access:secret lines; a JSON entry\'s "buckets" limits that key)')
    .option('--anonymous-read <buckets>', 'buckets anonymous clients may read (comma list, repeatable)', collect, [])
    .option('--log-level <level>', 'pino log level (logs go to stderr)', 'info');
}

export function buildProgram(): Command {
  const program = new Command('lookahead')
    .description('S3-compatible gateway with look-ahead record replication')
    .showHelpAfterError();

  addSiteOptions(
    program
      .command('serve')
      .description('run one gateway site')
      .option('--data <dir>', 'data directory', './data')
      .option('--listen <host:port>', 'address to listen on (port 0 picks a free one)', defaultListen)
      .addOption(new Option('--role <role>', 'site role').choices(['single', 'primary', 'secondary']).default('single'))
      .option(
        '--secondary <url>',
        'primary: the secondary gateway (http://HOST:PORT) or a plain S3 server (s3://BUCKET[/PREFIX]@http://HOST:PORT, credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
      )
      .option('--primary-url <url>', 'secondary: the primary, named in errors clients get for writes here')
      .option('--replication-secret <secret>', 'shared inter-site secret (default: LOOKAHEAD_REPLICATION_SECRET)')
      .addOption(
        new Option('--on-secondary-down <mode>', 'primary: keep serving (degraded) or refuse writes that miss')
          .choices(['degraded', 'refuse'])
          .default('degraded'),
      )
      .option('--sync-copy-on-miss', syncCopyHelp)
      .addOption(new Option('--copy-priority <mode>', copyPriorityHelp).choices([...copyPriorities]).default('background'))
      .option(
        '--copy-lag-max-ms <ms>',
        `primary, --copy-priority background: the oldest held copy's age past which copies go at full speed (at most ${copyDeferLagMsMax})`,
        lagMs,
        copyDeferLagMsDefault,
      )
      .option('--record-entries-max <n>', 'primary: the record size limit (misses wait for room past it)', positiveInt)
      .option('--predictors <list>', `primary: predictors on (default ${defaultPredictorConfig.enabled.join(',')})`)
      .option('--tls-cert <file>', 'serve clients over HTTPS with this PEM certificate (chain); needs --tls-key')
      .option('--tls-key <file>', 'PEM private key for --tls-cert')
      .addOption(
        new Option('--verify-reads <what>', 'GETs check every stored blob they read whole against the CRC32 recorded when it was written (older records: the ETag MD5) (full), or the length only (size)')
          .choices(['full', 'size'])
          .default('full'),
      )
      .option('--promote', 'secondary: take over as primary at start (as `lookahead promote`)')
      .option('--rejoin-from <url>', 'become the secondary of this primary at start (failback after a failover)')
      .option('--force-primary', 'primary: accept writes after a restart even if the secondary does not answer (risks a split brain if it was promoted)'),
  ).action(async (flags: ServeFlags) => {
    const site = await startSite(siteConfig(flags));
    printSite(site, flags.role);
    stopOnSignals([site]);
  });

  program
    .command('up')
    .description('the main job on embedded defaults: a primary on 127.0.0.1:9000 replicating to a secondary on 127.0.0.1:9001')
    .option('--data <dir>', 'data directory (primary/ and secondary/ under it)', './data')
    .option('--log-level <level>', 'pino log level (logs go to stderr)', 'warn')
    .option('--sync-copy-on-miss', syncCopyHelp)
    .addOption(new Option('--copy-priority <mode>', copyPriorityHelp).choices([...copyPriorities]).default('background'))
    .action(async (flags: { data: string; logLevel: string; syncCopyOnMiss?: boolean; copyPriority: CopyPriority }) => {
      const sites = await startPair(resolve(flags.data), flags.logLevel, { syncCopyOnMiss: flags.syncCopyOnMiss === true, copyPriority: flags.copyPriority });
      stopOnSignals(sites);
    });

  addAdminOptions(
    program.command('status').description("show a site's role, peer, record, queue and miss rate"),
  )
    .option('--json', 'print the raw JSON')
    .action(async (flags: AdminFlags & { json?: boolean }) => {
      const res = await adminCall(await adminEndpoint(flags), 'GET', '/_lookahead/status');
      if (res.status !== 200) fail(`status: HTTP ${res.status}: ${res.text}`);
      console.log(flags.json ? JSON.stringify(res.json, null, 2) : formatStatus(res.json));
    });

  addFailoverCommands(program);
  return program;
}

/** The inter-site secret of `up`: generated once, kept beside both data dirs. */
async function pairSecret(dataDir: string): Promise<string> {
  const path = join(dataDir, 'replication-secret');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    const secret = randomBytes(24).toString('base64url');
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

async function startPair(
  dataDir: string,
  logLevel: string,
  primaryFlags: { syncCopyOnMiss: boolean; copyPriority: CopyPriority },
): Promise<RunningSite[]> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const secret = process.env.LOOKAHEAD_REPLICATION_SECRET ?? (await pairSecret(dataDir));
  const base = { region: 'us-east-1', anonymousRead: [], logLevel, replicationSecret: secret };
  const secondary = await startSite(
    siteConfig({ ...base, data: join(dataDir, 'secondary'), listen: '127.0.0.1:9001', role: 'secondary', primaryUrl: 'http://127.0.0.1:9000' }),
  );
  // One key pair for both sites, so clients keep theirs after a failover.
  const env = { ...process.env, LOOKAHEAD_ACCESS_KEY: secondary.credentials.accessKeyId, LOOKAHEAD_SECRET_KEY: secondary.credentials.secretAccessKey };
  const primary = await startSite({
    ...siteConfig({ ...base, data: join(dataDir, 'primary'), listen: defaultListen, role: 'primary', secondary: secondary.endpoint, ...primaryFlags }),
    env,
  });
  printSite(primary, 'primary', secondary.credentialsGenerated);
  console.log(`lookahead listening on ${secondary.endpoint} (secondary, same keys; replicas of the primary)`);
  console.log(`  status: npx lookahead status --endpoint ${primary.endpoint} --data ${join(dataDir, 'secondary')}`);
  return [primary, secondary];
}

function formatStatus(json: unknown): string {
  const lines: string[] = [];
  const walk = (value: unknown, indent: string) => {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        lines.push(`${indent}${k}:`);
        walk(v, `${indent}  `);
      } else {
        lines.push(`${indent}${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
      }
    }
  };
  walk(json, '');
  return lines.join('\n');
}

await buildProgram().parseAsync(process.argv);
