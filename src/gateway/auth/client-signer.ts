// Signing side of SigV4, for our own clients (the CLI's admin requests, the
// inter-site tools). It reuses the verifier's canonicalisation so both ends
// share one definition of the canonical request.

import { canonicalQuery, canonicalRequest, canonicalUri, parseQuery } from './canonical.ts';
import { credentialScope, deriveSigningKey, hmacHex, sha256Hex, sigV4Algorithm, stringToSign } from './signing.ts';
import { formatAmzDate } from './sigv4.ts';

export interface SignInput {
  method: string;
  /** Host header value (host:port). */
  host: string;
  /** Raw path and query as they go on the wire. */
  rawPath: string;
  rawQuery?: string;
  body?: Buffer;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  now: number;
}

/** Headers to send: host, x-amz-date, x-amz-content-sha256, authorization. */
export function signRequest(input: SignInput): Record<string, string> {
  const amzDate = formatAmzDate(input.now);
  const region = input.region ?? 'us-east-1';
  const scope = credentialScope(amzDate.slice(0, 8), region, 's3');
  const payloadHash = sha256Hex(input.body ?? Buffer.alloc(0));
  const headers: Record<string, string> = {
    host: input.host,
    'x-amz-content-sha256': payloadHash,
    'x-amz-date': amzDate,
  };
  const signedHeaders = Object.keys(headers).sort();
  const canonical = canonicalRequest({
    method: input.method,
    canonicalUri: canonicalUri(input.rawPath),
    canonicalQuery: canonicalQuery(parseQuery(input.rawQuery ?? '')),
    headers,
    signedHeaders,
    payloadHash,
  });
  const key = deriveSigningKey(input.secretAccessKey, amzDate.slice(0, 8), region, 's3');
  const signature = hmacHex(key, stringToSign(amzDate, scope, canonical));
  headers.authorization =
    `${sigV4Algorithm} Credential=${input.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return headers;
}
