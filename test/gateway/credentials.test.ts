import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCredentials, parseKeysFile } from '../../src/gateway/credentials.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lookahead-creds-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadCredentials', () => {
  it('takes the pair from the environment and writes nothing', async () => {
    const c = await loadCredentials({ dataDir: dir, env: { LOOKAHEAD_ACCESS_KEY: 'envkey', LOOKAHEAD_SECRET_KEY: 'envsecret' } });
    expect(c.source).toBe('env');
    expect(c.lookup.secretFor('envkey')).toBe('envsecret');
    expect(c.lookup.secretFor('other')).toBeUndefined();
    await expect(stat(join(dir, 'credentials.json'))).rejects.toThrow();
  });

  it('refuses half a pair', async () => {
    await expect(loadCredentials({ dataDir: dir, env: { LOOKAHEAD_ACCESS_KEY: 'only' } })).rejects.toThrow(/both/);
  });

  it('generates a pair once, mode 0600, and reuses it on the next start', async () => {
    const first = await loadCredentials({ dataDir: dir, env: {} });
    expect(first.generated).toBe(true);
    expect(first.primary.accessKeyId).toMatch(/^[A-Z0-9]{20}$/);
    expect(first.primary.secretAccessKey.length).toBeGreaterThanOrEqual(40);
    const file = join(dir, 'credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await loadCredentials({ dataDir: dir, env: {} });
    expect(second.generated).toBe(false);
    expect(second.source).toBe('file');
    expect(second.primary).toEqual(first.primary);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(first.primary);
  });

  it('adds the pairs of a keys file', async () => {
    const keys = join(dir, 'keys.txt');
    await writeFile(keys, '# extra keys\nalice:alice-secret\nbob:bob:secret-with-colon\n');
    const c = await loadCredentials({ dataDir: dir, env: { LOOKAHEAD_ACCESS_KEY: 'main', LOOKAHEAD_SECRET_KEY: 's' }, keysFile: keys });
    expect(c.lookup.secretFor('alice')).toBe('alice-secret');
    expect(c.lookup.secretFor('bob')).toBe('bob:secret-with-colon');
    expect(c.lookup.secretFor('main')).toBe('s');
  });
});

describe('parseKeysFile', () => {
  it('reads JSON objects and arrays', () => {
    expect(parseKeysFile('{"a":"1","b":"2"}')).toEqual([
      { accessKeyId: 'a', secretAccessKey: '1' },
      { accessKeyId: 'b', secretAccessKey: '2' },
    ]);
    expect(parseKeysFile('[{"accessKeyId":"a","secretAccessKey":"1"}]')).toEqual([{ accessKeyId: 'a', secretAccessKey: '1' }]);
  });
  it('rejects malformed lines and entries', () => {
    expect(() => parseKeysFile('no-colon-here')).toThrow(/line 1/);
    expect(() => parseKeysFile('[{"accessKeyId":"a"}]')).toThrow();
    expect(() => parseKeysFile('{"a":""}')).toThrow();
  });
});
