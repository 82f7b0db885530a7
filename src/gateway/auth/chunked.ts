// aws-chunked body decoder (Content-Encoding: aws-chunked), as a streaming
// Transform.
//
// Wire format, after node has removed any HTTP Transfer-Encoding layer:
//
//   hex-size[;chunk-signature=<64 hex>]\r\n <data> \r\n   (repeated)
//   0[;chunk-signature=<64 hex>]\r\n
//   name:value\r\n ...                                    (trailer modes)
//   x-amz-trailer-signature:<64 hex>\r\n                  (signed trailer mode)
//   \r\n
//
// Chunk data is passed downstream as it arrives, before that chunk's
// signature has been checked: the store commits only when the stream ends
// cleanly, so erroring the stream on a bad signature is enough and we never
// hold a whole chunk (64 KiB to 1 MiB) in memory.

import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { assert } from '../../core/assert.ts';
import { S3Error } from '../../core/errors.ts';
import { chunkHeaderBytesMax, chunkTrailerBytesMax } from '../../core/limits.ts';
import { emptySha256Hex, hmacHex, sha256Hex, signaturesEqual } from './signing.ts';
import type { AuthContext } from './sigv4.ts';

export interface AwsChunkedDecoderOptions {
  auth: AuthContext;
  /** x-amz-decoded-content-length, when the client sent it. */
  decodedLength?: number;
}

type State = 'size' | 'data' | 'data-crlf' | 'trailer' | 'done';

/** 13 hex digits stay below 2^53, far above any legal object size. */
const chunkSizePattern = /^[0-9a-fA-F]{1,13}$/;
const signaturePattern = /^[0-9a-f]{64}$/;
const trailerSignatureName = 'x-amz-trailer-signature';

function malformed(message: string): S3Error {
  return new S3Error('InvalidRequest', `Malformed aws-chunked body: ${message}`);
}

function badSignature(what: string): S3Error {
  return new S3Error('SignatureDoesNotMatch', `The ${what} signature we calculated does not match the signature you provided.`);
}

function incomplete(message: string): S3Error {
  return new S3Error('IncompleteBody', message);
}

export class AwsChunkedDecoder extends Transform {
  /** Trailer headers (lower-case names), complete once the stream has ended. */
  readonly trailers: Record<string, string> = {};

  private readonly auth: AuthContext;
  private readonly decodedLength: number | undefined;
  private readonly signedChunks: boolean;
  private readonly trailerMode: 'none' | 'unsigned' | 'signed';

  private state: State = 'size';
  private lineParts: Buffer[] = [];
  private lineLength = 0;
  private remaining = 0;
  private crlfSeen = 0;
  private decodedTotal = 0;
  private chunkSignature = '';
  private chunkHash: Hash | undefined;
  private previousSignature: string;
  private trailerBytes = 0;
  private trailerCanonical = '';
  private trailerSignature: string | undefined;

  constructor(options: AwsChunkedDecoderOptions) {
    super();
    const mode = options.auth.payloadMode;
    assert(mode.startsWith('STREAMING-'), `aws-chunked decoder built for payload mode ${mode}`);
    this.auth = options.auth;
    this.decodedLength = options.decodedLength;
    this.signedChunks = mode !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
    this.trailerMode =
      mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
        ? 'none'
        : mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
          ? 'signed'
          : 'unsigned';
    this.previousSignature = options.auth.signature;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.finish();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  private consume(buf: Buffer): void {
    let offset = 0;
    // Each step consumes at least one byte or completes a state, so this
    // loop runs at most a few times per byte of input.
    while (offset < buf.length) {
      switch (this.state) {
        case 'size':
          offset = this.readSizeLine(buf, offset);
          break;
        case 'data':
          offset = this.readData(buf, offset);
          break;
        case 'data-crlf':
          offset = this.readDataCrlf(buf, offset);
          break;
        case 'trailer':
          offset = this.readTrailerLine(buf, offset);
          break;
        case 'done':
          throw malformed('data after the final chunk');
      }
    }
  }

  private finish(): void {
    if (this.state === 'done') return;
    // Some clients omit the very last CRLF after the trailers. Everything
    // before it has been received and (in signed modes) verified.
    const atLineStart = this.state === 'trailer' && this.lineLength === 0;
    if (atLineStart && (this.trailerMode !== 'signed' || this.trailerSignature !== undefined)) {
      this.endTrailers();
      return;
    }
    throw incomplete('The request body ended before the aws-chunked encoding was complete.');
  }

  /** Collects one CRLF-terminated line; returns [line or undefined, new offset]. */
  private takeLine(buf: Buffer, offset: number, max: number): [string | undefined, number] {
    const lf = buf.indexOf(0x0a, offset);
    const end = lf < 0 ? buf.length : lf + 1;
    this.lineLength += end - offset;
    if (this.lineLength > max) throw malformed(`a header or trailer line is longer than ${max} bytes`);
    this.lineParts.push(buf.subarray(offset, end));
    if (lf < 0) return [undefined, end];
    const whole = this.lineParts.length === 1 ? this.lineParts[0]! : Buffer.concat(this.lineParts);
    this.lineParts = [];
    this.lineLength = 0;
    if (whole.length < 2 || whole[whole.length - 2] !== 0x0d) throw malformed('a line is not terminated by CRLF');
    return [whole.subarray(0, whole.length - 2).toString('latin1'), end];
  }

  private readSizeLine(buf: Buffer, offset: number): number {
    const [line, next] = this.takeLine(buf, offset, chunkHeaderBytesMax);
    if (line !== undefined) this.startChunk(line);
    return next;
  }

  private startChunk(line: string): void {
    const [sizeText = '', ...extensions] = line.split(';');
    if (!chunkSizePattern.test(sizeText)) throw malformed(`bad chunk size "${sizeText.slice(0, 32)}"`);
    const size = parseInt(sizeText, 16);
    if (this.decodedLength !== undefined && this.decodedTotal + size > this.decodedLength) {
      throw incomplete(`The aws-chunked body carries more than the ${this.decodedLength} bytes of x-amz-decoded-content-length.`);
    }
    if (this.signedChunks) this.chunkSignature = chunkSignatureOf(extensions);
    if (size === 0) {
      if (this.signedChunks) this.verifyChunk(emptySha256Hex);
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.chunkHash = this.signedChunks ? createHash('sha256') : undefined;
    this.state = 'data';
  }

  private readData(buf: Buffer, offset: number): number {
    const n = Math.min(this.remaining, buf.length - offset);
    const slice = buf.subarray(offset, offset + n);
    this.chunkHash?.update(slice);
    this.push(slice);
    this.remaining -= n;
    this.decodedTotal += n;
    if (this.remaining === 0) {
      this.state = 'data-crlf';
      this.crlfSeen = 0;
    }
    return offset + n;
  }

  private readDataCrlf(buf: Buffer, offset: number): number {
    const expected = this.crlfSeen === 0 ? 0x0d : 0x0a;
    if (buf[offset] !== expected) throw malformed('chunk data is not followed by CRLF');
    this.crlfSeen += 1;
    if (this.crlfSeen === 2) {
      if (this.chunkHash) this.verifyChunk(this.chunkHash.digest('hex'));
      this.chunkHash = undefined;
      this.state = 'size';
    }
    return offset + 1;
  }

  private verifyChunk(dataSha256Hex: string): void {
    const { amzDate, scope, signingKey } = this.auth;
    const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, this.previousSignature, emptySha256Hex, dataSha256Hex].join('\n');
    if (!signaturesEqual(hmacHex(signingKey, toSign), this.chunkSignature)) throw badSignature('chunk');
    this.previousSignature = this.chunkSignature;
  }

  private readTrailerLine(buf: Buffer, offset: number): number {
    const [line, next] = this.takeLine(buf, offset, chunkTrailerBytesMax - this.trailerBytes);
    if (line === undefined) return next;
    this.trailerBytes += line.length + 2;
    if (line === '') {
      this.endTrailers();
    } else {
      this.addTrailer(line);
    }
    return next;
  }

  private addTrailer(line: string): void {
    if (this.trailerMode === 'none') throw malformed('trailers sent without a trailer payload mode');
    if (this.trailerSignature !== undefined) throw malformed('a trailer follows x-amz-trailer-signature');
    const colon = line.indexOf(':');
    const name = trimOws(line.slice(0, Math.max(colon, 0))).toLowerCase();
    if (colon <= 0 || !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw malformed('a trailer line is not "name:value"');
    const value = trimOws(line.slice(colon + 1));
    if (name === trailerSignatureName) {
      this.trailerSignature = value;
      return;
    }
    if (Object.hasOwn(this.trailers, name)) throw malformed(`trailer ${name} sent twice`);
    this.trailers[name] = value;
    this.trailerCanonical += `${name}:${value}\n`;
  }

  private endTrailers(): void {
    if (this.trailerMode === 'signed') this.verifyTrailer();
    if (this.decodedLength !== undefined && this.decodedTotal !== this.decodedLength) {
      throw incomplete(`The aws-chunked body carried ${this.decodedTotal} bytes, not the ${this.decodedLength} of x-amz-decoded-content-length.`);
    }
    this.state = 'done';
  }

  private verifyTrailer(): void {
    const provided = this.trailerSignature;
    if (provided === undefined) throw badSignature('trailer (missing x-amz-trailer-signature)');
    const { amzDate, scope, signingKey } = this.auth;
    const toSign = ['AWS4-HMAC-SHA256-TRAILER', amzDate, scope, this.previousSignature, sha256Hex(this.trailerCanonical)].join('\n');
    if (!signaturesEqual(hmacHex(signingKey, toSign), provided)) throw badSignature('trailer');
  }
}

/** HTTP optional whitespace is spaces and tabs only; other control bytes are content. */
function trimOws(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** The chunk-signature extension of a chunk header, required in signed modes. */
function chunkSignatureOf(extensions: readonly string[]): string {
  for (const extension of extensions) {
    const eq = extension.indexOf('=');
    if (eq > 0 && trimOws(extension.slice(0, eq)) === 'chunk-signature') {
      const value = trimOws(extension.slice(eq + 1));
      if (!signaturePattern.test(value)) throw badSignature('chunk (malformed chunk-signature)');
      return value;
    }
  }
  throw badSignature('chunk (missing chunk-signature)');
}
