// Admin credentials and endpoint flags shared by the CLI's admin commands
// (status, promote, rejoin, switchover, verify).

import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { AdminEndpoint } from './admin-client.ts';

export const defaultListen = '127.0.0.1:9000';

export interface AdminFlags {
  endpoint: string;
  data?: string;
  accessKey?: string;
  secretKey?: string;
}

export function addAdminOptions(cmd: Command, endpointHelp = 'the site to ask'): Command {
  return cmd
    .option('--endpoint <url>', endpointHelp, `http://${defaultListen}`)
    .option('--data <dir>', "read the admin key from this site's data dir (credentials.json)")
    .option('--access-key <id>', 'admin access key (default: LOOKAHEAD_ACCESS_KEY)')
    .option('--secret-key <secret>', 'admin secret key (default: LOOKAHEAD_SECRET_KEY)');
}

export function fail(message: string): never {
  console.error(`lookahead: ${message}`);
  process.exit(1);
}

/** Admin credentials: flags, then the environment, then a data dir's file. */
export async function adminEndpoint(flags: AdminFlags, url = flags.endpoint): Promise<AdminEndpoint> {
  let accessKeyId = flags.accessKey ?? process.env.LOOKAHEAD_ACCESS_KEY;
  let secretAccessKey = flags.secretKey ?? process.env.LOOKAHEAD_SECRET_KEY;
  if ((!accessKeyId || !secretAccessKey) && flags.data) {
    const stored = JSON.parse(await readFile(join(resolve(flags.data), 'credentials.json'), 'utf8')) as {
      accessKeyId: string;
      secretAccessKey: string;
    };
    accessKeyId = stored.accessKeyId;
    secretAccessKey = stored.secretAccessKey;
  }
  if (!accessKeyId || !secretAccessKey) {
    fail('admin credentials needed: --access-key/--secret-key, LOOKAHEAD_ACCESS_KEY/LOOKAHEAD_SECRET_KEY, or --data DIR');
  }
  return { url, accessKeyId, secretAccessKey };
}
