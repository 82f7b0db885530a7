// SigV4 canonical request pieces, S3 flavour.
//
// S3 differs from the generic SigV4 suite in two ways that matter here: the
// URI path is neither normalised (no '.'/'..'/'//' folding) nor double
// encoded. Clients sign UriEncode(key) per segment, so we percent-decode the
// path exactly as received and encode it again with the AWS UriEncode rules.
// Decoding to bytes (not to a JS string) keeps keys that are not valid UTF-8
// percent sequences stable instead of throwing.

/** AWS UriEncode: unreserved bytes stay, everything else becomes %XX (upper hex). */
export function uriEncode(input: Buffer | string, encodeSlash: boolean): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let out = '';
  for (const byte of bytes) {
    if (isUnreserved(byte) || (!encodeSlash && byte === 0x2f)) {
      out += String.fromCharCode(byte);
    } else {
      out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x2d || // -
    byte === 0x2e || // .
    byte === 0x5f || // _
    byte === 0x7e // ~
  );
}

/**
 * Bytes of a raw (wire) URI component with %XX sequences decoded. A '%' not
 * followed by two hex digits stays literal, as does '+' (S3 signs '+' as
 * %2B; form decoding would turn it into a space the client never signed).
 */
export function percentDecode(raw: string): Buffer {
  const text = Buffer.from(raw, 'utf8');
  const out = Buffer.allocUnsafe(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const byte = text[i]!;
    if (byte === 0x25 && i + 2 < text.length && isHex(text[i + 1]!) && isHex(text[i + 2]!)) {
      out[length++] = parseInt(String.fromCharCode(text[i + 1]!, text[i + 2]!), 16);
      i += 2;
    } else {
      out[length++] = byte;
    }
  }
  return out.subarray(0, length);
}

function isHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

/** Paths that decode and re-encode to themselves: unreserved bytes and '/' only. */
const alreadyCanonicalPath = /^[A-Za-z0-9\-._~/]+$/;

/** Canonical URI for S3: the decoded path re-encoded, '/' kept, no normalisation. */
export function canonicalUri(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  // Most keys need neither step; skip the byte-by-byte round trip for them.
  if (alreadyCanonicalPath.test(path)) return path;
  return uriEncode(percentDecode(path), false);
}

export interface QueryParam {
  /** Decoded name and value (UTF-8; lossy only for invalid sequences). */
  name: string;
  value: string;
  /** UriEncode of the decoded bytes, as they appear in the canonical query. */
  encodedName: string;
  encodedValue: string;
}

/** Splits a raw query string ('a=1&b', no '?') into parameters, wire order kept. */
export function parseQuery(rawQuery: string): QueryParam[] {
  const params: QueryParam[] = [];
  if (rawQuery === '') return params;
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const rawName = eq < 0 ? piece : piece.slice(0, eq);
    const rawValue = eq < 0 ? '' : piece.slice(eq + 1);
    const nameBytes = percentDecode(rawName);
    const valueBytes = percentDecode(rawValue);
    params.push({
      name: nameBytes.toString('utf8'),
      value: valueBytes.toString('utf8'),
      encodedName: uriEncode(nameBytes, true),
      encodedValue: uriEncode(valueBytes, true),
    });
  }
  return params;
}

/** Canonical query: sorted by encoded name, then encoded value; `omit` names dropped. */
export function canonicalQuery(params: readonly QueryParam[], omit?: string): string {
  return params
    .filter((p) => p.name !== omit)
    .map((p) => [p.encodedName, p.encodedValue] as const)
    .sort((a, b) => compareStrings(a[0], b[0]) || compareStrings(a[1], b[1]))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function compareStrings(a: string, b: string): number {
  // Encoded names are ASCII, so UTF-16 order is byte order.
  return a < b ? -1 : a > b ? 1 : 0;
}

export type HeaderBag = Record<string, string | string[] | undefined>;

/** A tab, two spaces in a row, or a space at either end. */
const needsHeaderCanonicalising = /\t| {2}|^ | $/;

/** Trimmed, with inner runs of spaces/tabs collapsed to one space (SigV4 rule). */
export function canonicalHeaderValue(value: string): string {
  // Most values have nothing to trim or collapse: return them as they are.
  if (!needsHeaderCanonicalising.test(value)) return value;
  // Only spaces and tabs: String.trim would also eat \v, \f and U+00A0,
  // which are part of the value the client signed.
  return value.replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

/** The value a signed header contributes: multi-valued headers joined with ','. */
export function signedHeaderValue(headers: HeaderBag, name: string): string {
  const value = headers[name];
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map(canonicalHeaderValue).join(',');
  return canonicalHeaderValue(value);
}

export interface CanonicalRequestParts {
  method: string;
  canonicalUri: string;
  canonicalQuery: string;
  /** Lower-case names in the order the client listed them in SignedHeaders. */
  signedHeaders: readonly string[];
  headers: HeaderBag;
  payloadHash: string;
}

export function canonicalRequest(parts: CanonicalRequestParts): string {
  const headerLines = parts.signedHeaders.map((name) => `${name}:${signedHeaderValue(parts.headers, name)}\n`);
  return [
    parts.method,
    parts.canonicalUri,
    parts.canonicalQuery,
    headerLines.join(''),
    parts.signedHeaders.join(';'),
    parts.payloadHash,
  ].join('\n');
}
