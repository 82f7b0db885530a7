// `lookahead`: the command-line entry point and composition root.

import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { startSite, type RunningSite, type SiteConfig } from './cli/site.ts';

const defaultListen = '127.0.0.1:9000';

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
    ...(flags.baseDomain ? { baseDomain: flags.baseDomain } : {}),
    ...(flags.keysFile ? { keysFile: resolve(flags.keysFile) } : {}),
  };
}

function printSite(site: RunningSite, label: string): void {
  console.log(`lookahead listening on ${site.endpoint} (${label})`);
  const { accessKeyId, secretAccessKey } = site.credentials;
  console.log(`  access key: ${accessKeyId}`);
  console.log(`  secret key: ${secretAccessKey}${site.credentialsGenerated ? '   (generated, stored in the data dir)' : ''}`);
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
    .option('--keys-file <file>', 'extra access keys (JSON or access:secret lines)')
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
      .addOption(new Option('--role <role>', 'site role').choices(['single', 'primary', 'secondary']).default('single')),
  ).action(async (flags: ServeFlags) => {
    const site = await startSite(siteConfig(flags));
    printSite(site, flags.role);
    stopOnSignals([site]);
  });

  return program;
}

await buildProgram().parseAsync(process.argv);
