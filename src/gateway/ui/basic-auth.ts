// HTTP Basic auth for the operator console: a browser cannot SigV4-sign, so
// the console and the JSON it polls also accept the admin key as
// user = access key id, password = secret (over TLS in front of us, as any
// Basic scheme needs).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { CredentialLookup } from '../auth/sigv4.ts';

/** The challenge a browser answers with its login prompt. */
export const basicChallenge = 'Basic realm="lookahead"';

export interface BasicCredentials {
  user: string;
  password: string;
}

/** True when the Authorization header uses the Basic scheme (any case). */
export function isBasicAuthorization(header: string | undefined): boolean {
  return header !== undefined && /^basic(\s|$)/i.test(header.trimStart());
}

/** Decodes `Basic base64(user:password)`; undefined when malformed. */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (!isBasicAuthorization(header)) return undefined;
  const token = (header as string).trim().slice('basic'.length).trim();
  if (token.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(token)) return undefined;
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  // RFC 7617: the user id cannot contain a colon; the password may.
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Constant-time string comparison. Both sides are hashed first so the
 * buffers timingSafeEqual compares always have equal length: comparing the
 * raw strings would leak the secret's length through the early exit.
 */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * The admin access key id the header proves, or undefined when it names no
 * admin key or the password is wrong. The work done does not depend on
 * whether the key exists (an unknown key is compared against a dummy).
 */
export function verifyBasic(
  header: string | undefined,
  credentials: CredentialLookup,
  adminKeys: ReadonlySet<string>,
): string | undefined {
  const parsed = parseBasicAuthorization(header);
  if (parsed === undefined) return undefined;
  const secret = adminKeys.has(parsed.user) ? credentials.secretFor(parsed.user) : undefined;
  const matches = secretsEqual(parsed.password, secret ?? '\0no such key\0');
  return matches && secret !== undefined ? parsed.user : undefined;
}
