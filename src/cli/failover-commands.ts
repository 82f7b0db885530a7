// The CLI's failover commands (issue 4): promote, at-risk, rejoin,
// switchover, verify. Each is a few signed admin calls (src/gateway/admin.ts
// actions, implemented by src/cli/roles.ts) plus output for people (text)
// and for scripts (--json).

import { S3Client } from '@aws-sdk/client-s3';
import type { Command } from 'commander';
import { parseLocationName } from '../predict/locations.ts';
import { plainS3Lister, verifySites, type VerifyResult } from '../replica/failover/verify.ts';
import { createS3Target } from '../replica/s3/target.ts';
import { adminCall, type AdminEndpoint } from './admin-client.ts';
import { addAdminOptions, adminEndpoint, fail, type AdminFlags } from './admin-options.ts';
import type { AtRiskReport } from './roles.ts';
import { s3Promote, s3Rejoin } from './s3-failback-commands.ts';

/** How often rejoin/switchover poll the new primary's status. */
const progressPollMs = 500;
/** How long rejoin waits for the resync before leaving it to run on. */
const resyncWaitMsDefault = 60 * 60 * 1000;

async function action(endpoint: AdminEndpoint, name: string, body: unknown = {}): Promise<unknown> {
  const res = await adminCall(endpoint, 'POST', `/_lookahead/admin/${name}`, body);
  if (res.status !== 200) fail(`${name} on ${endpoint.url}: HTTP ${res.status}: ${res.text}`);
  return res.json;
}

/** "k/b/key" -> "b/key"; groups named by what they cover. */
export function describeLocation(name: string): string {
  const loc = parseLocationName(name);
  switch (loc?.kind) {
    case 'key':
      return `${loc.bucket}/${loc.key}`;
    case 'prefix':
      return `${loc.bucket}/${loc.prefix}*   (prefix group: every key under it)`;
    case 'upload':
      return `${loc.bucket}/${loc.key}   (multipart upload ${loc.uploadId})`;
    case 'bucket':
      return `${loc.bucket}   (the bucket itself)`;
    default:
      return name;
  }
}

export function formatAtRisk(report: AtRiskReport): string {
  const lines = [
    `role: ${report.role}, epoch ${report.epoch}`,
    `at risk: ${report.atRisk.count} location(s) whose last write on the old primary may not have arrived`,
    ...report.atRisk.names.map((n) => `  ${describeLocation(n)}`),
  ];
  if (report.atRisk.truncated) lines.push(`  ... (${report.atRisk.count - report.atRisk.names.length} more: GET /_lookahead/record or --json with at-risk --all)`);
  lines.push(`written here since promotion: ${report.trackedSincePromotion} key(s)`);
  return lines.join('\n');
}

interface ResyncProgress {
  phase: string;
  done: number;
  total: number;
  examined?: number;
  copied?: number;
  deleted?: number;
}

function bar(p: ResyncProgress): string {
  const width = 30;
  const frac = p.total === 0 ? 1 : Math.min(1, p.done / p.total);
  const fill = Math.round(frac * width);
  return `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${p.done}/${p.total} ${p.phase}  copied ${p.copied ?? 0} deleted ${p.deleted ?? 0}`;
}

/** Polls the new primary's status until its resync is done (a bar on a TTY). */
async function waitResync(endpoint: AdminEndpoint, maxMs: number, json: boolean): Promise<ResyncProgress | undefined> {
  const tty = process.stderr.isTTY && !json;
  const end = Date.now() + maxMs;
  let last: ResyncProgress | undefined;
  for (let i = 0; Date.now() < end && i < maxMs / progressPollMs + 1; i++) {
    const res = await adminCall(endpoint, 'GET', '/_lookahead/status');
    const resync = (res.json as { resync?: ResyncProgress } | undefined)?.resync;
    if (resync) {
      last = resync;
      if (tty) process.stderr.write(`\rresync ${bar(resync)}`);
      if (resync.phase === 'done') break;
    }
    await new Promise((r) => setTimeout(r, progressPollMs));
  }
  if (tty) process.stderr.write('\n');
  return last;
}

function s3ClientFor(endpoint: AdminEndpoint): S3Client {
  return new S3Client({
    endpoint: endpoint.url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: endpoint.accessKeyId, secretAccessKey: endpoint.secretAccessKey },
  });
}

export function formatVerify(result: VerifyResult): string {
  const lines = [
    `buckets: ${result.buckets}, keys: primary ${result.keysPrimary}, secondary ${result.keysSecondary}`,
    `differences: ${result.differences.length} (${result.uncovered} not covered by the record)`,
  ];
  for (const d of result.differences) {
    lines.push(`  ${d.covered ? 'covered  ' : 'UNCOVERED'} ${d.kind.padEnd(21)} ${d.bucket}/${d.key}`);
  }
  return lines.join('\n');
}

type JsonFlag = { json?: boolean };

async function verifyGateways(p: AdminEndpoint, s: AdminEndpoint, bodies: boolean): Promise<VerifyResult> {
  const record = (await action(s, 'at-risk', { all: true })) as AtRiskReport;
  return verifySites({ primary: s3ClientFor(p), secondary: s3ClientFor(s), record: record.atRisk.names, bodies });
}

/** A plain S3 secondary: its record is read where it keeps it (no session
 * is opened), keys through its bucket mapping; it cannot list the
 * primary's buckets, so the primary's are compared. */
async function verifyPlainS3(primary: S3Client, url: string, bodies: boolean): Promise<VerifyResult> {
  const target = createS3Target({ url });
  try {
    const record = await target.readRecord();
    return await verifySites({
      primary,
      secondary: plainS3Lister(target),
      headSecondary: (bucket, key) => target.headObject(bucket, key),
      record: record.entries.map((e) => e.name),
      bodies,
    });
  } finally {
    await target.close();
  }
}

export function addFailoverCommands(program: Command): void {
  addAdminOptions(program.command('promote').description('make a secondary the primary (failover): higher epoch, accepts writes, reports the at-risk list'), 'the secondary to promote')
    .option('--planned', 'the old primary was drained first (switchover): nothing is at risk')
    .option('--from-s3 <url>', 'failover to a plain S3 secondary s3://BUCKET[/PREFIX]@ENDPOINT (AWS_* credentials): mark it primary at the next epoch and print its record')
    .option('--new-primary <url>', 'with --from-s3: where clients now write, stored with the epoch (named to a fenced old primary)')
    .option('--all', 'with --from-s3: every at-risk name, not the first 10,000')
    .option('--json', 'print JSON')
    .action(async (flags: AdminFlags & JsonFlag & { planned?: boolean; fromS3?: string; newPrimary?: string; all?: boolean }) => {
      if (flags.fromS3) return s3Promote(flags.fromS3, { json: flags.json, all: flags.all, ...(flags.newPrimary ? { primary: flags.newPrimary } : {}) });
      const report = (await action(await adminEndpoint(flags), 'promote', { planned: flags.planned === true })) as AtRiskReport;
      console.log(flags.json ? JSON.stringify(report, null, 2) : `promoted\n${formatAtRisk(report)}`);
    });

  addAdminOptions(program.command('at-risk').description("a site's at-risk list: its record (secondary) or the record at promotion"))
    .option('--all', 'every name, not the first 10,000')
    .option('--json', 'print JSON')
    .action(async (flags: AdminFlags & JsonFlag & { all?: boolean }) => {
      const report = (await action(await adminEndpoint(flags), 'at-risk', { all: flags.all === true })) as AtRiskReport;
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatAtRisk(report));
    });

  addAdminOptions(
    program.command('rejoin').description('failback: the old primary becomes the secondary of the new one, which resyncs only what may differ'),
    'the old primary (as the new primary reaches it)',
  )
    .option('--primary <url>', 'the new primary (a gateway)')
    .option('--from-s3 <url>', 'failback from a plain S3 secondary s3://BUCKET[/PREFIX]@ENDPOINT that was promoted: with the old primary STOPPED, bring its --data DIR to the target\'s state (resumable)')
    .option('--no-wait', 'return once the resync started')
    .option('--json', 'print JSON')
    .action(async (flags: AdminFlags & JsonFlag & { primary?: string; fromS3?: string; wait: boolean }) => {
      if (flags.fromS3) {
        if (!flags.data) fail('rejoin --from-s3 needs --data DIR (the old primary\'s data dir, with the old primary stopped)');
        return s3Rejoin(flags.fromS3, flags.data, { json: flags.json });
      }
      if (!flags.primary) fail('rejoin needs --primary URL (or --from-s3 s3://... --data DIR)');
      const old = await adminEndpoint(flags);
      const primary = await adminEndpoint(flags, flags.primary);
      await action(old, 'rejoin', { primary: flags.primary });
      const attached = await action(primary, 'attach-secondary', { url: flags.endpoint });
      const progress = flags.wait ? await waitResync(primary, resyncWaitMsDefault, flags.json === true) : undefined;
      if (flags.json) console.log(JSON.stringify({ attached, resync: progress }, null, 2));
      else console.log(`${flags.endpoint} is now the secondary of ${flags.primary}${progress ? `\nresync ${bar(progress)}` : ' (resync running: see status)'}`);
    });

  addAdminOptions(
    program.command('switchover').description('planned role swap with nothing lost: drain the primary, make it secondary, promote the secondary'),
    'the current primary',
  )
    .requiredOption('--secondary <url>', 'the current secondary (the next primary)')
    .option('--json', 'print JSON')
    .action(async (flags: AdminFlags & JsonFlag & { secondary: string }) => {
      const oldPrimary = await adminEndpoint(flags);
      const next = await adminEndpoint(flags, flags.secondary);
      const demoted = await action(oldPrimary, 'demote', { primary: flags.secondary });
      const promoted = (await action(next, 'promote', { planned: true })) as AtRiskReport;
      const attached = await action(next, 'attach-secondary', { url: flags.endpoint });
      const progress = await waitResync(next, resyncWaitMsDefault, flags.json === true);
      if (flags.json) console.log(JSON.stringify({ demoted, promoted, attached, resync: progress }, null, 2));
      else console.log(`switchover done: ${flags.secondary} is the primary (epoch ${promoted.epoch}), ${flags.endpoint} its secondary; repoint clients to ${flags.secondary}`);
    });

  program
    .command('verify')
    .description('compare two sites through the S3 API; exit 1 if a difference is not covered by the record')
    .requiredOption('--primary <url>', 'one site')
    .requiredOption('--secondary <url>', 'the other (its record says what may differ): a gateway, or a plain S3 secondary s3://BUCKET[/PREFIX]@ENDPOINT (AWS_* credentials)')
    .option('--bodies', 'also compare a SHA-256 of every body')
    .option('--data <dir>', "read the admin key from a site's data dir (credentials.json)")
    .option('--access-key <id>', 'access key for both sites (default: LOOKAHEAD_ACCESS_KEY)')
    .option('--secret-key <secret>', 'secret key (default: LOOKAHEAD_SECRET_KEY)')
    .option('--json', 'print JSON')
    .action(async (flags: Omit<AdminFlags, 'endpoint'> & JsonFlag & { primary: string; secondary: string; bodies?: boolean }) => {
      const p = await adminEndpoint({ ...flags, endpoint: flags.primary });
      const result = flags.secondary.startsWith('s3://')
        ? await verifyPlainS3(s3ClientFor(p), flags.secondary, flags.bodies === true)
        : await verifyGateways(p, await adminEndpoint({ ...flags, endpoint: flags.secondary }), flags.bodies === true);
      console.log(flags.json ? JSON.stringify(result, null, 2) : formatVerify(result));
      process.exitCode = result.uncovered > 0 ? 1 : 0;
    });
}
