// XML in and out. Requests are small bounded documents parsed with
// fast-xml-parser; responses carry the S3 namespace.

import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { S3Error } from '../core/errors.ts';

export const s3Namespace = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** Elements that may repeat in request bodies: always parsed as arrays. */
const repeatedElements = new Set(['Part', 'Object', 'Tag']);

export type XmlValue = string | number | boolean | XmlNode | XmlValue[] | undefined;
export interface XmlNode {
  [name: string]: XmlValue;
}

/** Owns one parser and one builder; no module-level state. */
export class XmlCodec {
  private readonly parser = new XMLParser({
    ignoreAttributes: true,
    parseTagValue: false,
    removeNSPrefix: true,
    // &quot; and numeric references (&#34;) both appear in Complete bodies.
    htmlEntities: true,
    // Keys may begin or end with spaces: never trim.
    trimValues: false,
    isArray: (name) => repeatedElements.has(name),
  });

  private readonly builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    suppressEmptyNode: false,
  });

  /** Parses a request body; anything not well-formed is MalformedXML. */
  parse(body: Buffer | string, root: string): XmlNode {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    // S3 documents never declare a DTD; refusing one rules out entity tricks.
    if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw malformed();
    let doc: unknown;
    try {
      doc = this.parser.parse(text, true);
    } catch {
      throw malformed();
    }
    const node = (doc as XmlNode)[root];
    if (node === undefined) throw malformed();
    return node === '' ? {} : asNode(node);
  }

  /** Serialises a response document with the XML declaration and namespace. */
  build(root: string, content: XmlNode): string {
    const doc = { [root]: { '@_xmlns': s3Namespace, ...content } };
    return `<?xml version="1.0" encoding="UTF-8"?>\n${this.builder.build(doc)}`;
  }

  /** Serialises without the namespace (error bodies). */
  buildPlain(root: string, content: XmlNode): string {
    return `<?xml version="1.0" encoding="UTF-8"?>\n${this.builder.build({ [root]: content })}`;
  }
}

export function malformed(): S3Error {
  return new S3Error(
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  );
}

/** A child element that must be an element node (or empty). */
export function asNode(value: XmlValue): XmlNode {
  if (value === '' || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw malformed();
  return value;
}

/** Text of a child element; undefined when absent. */
export function text(node: XmlNode, name: string): string | undefined {
  const v = node[name];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  // An element with only whitespace children parses as {#text}; anything
  // else where text was expected is a schema violation.
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).every((k) => k === '#text')) {
    return typeof v['#text'] === 'string' ? v['#text'] : '';
  }
  throw malformed();
}

export function list(node: XmlNode, name: string): XmlNode[] {
  const v = node[name];
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v : [v];
  return items.map(asNode);
}

/** S3 timestamps in listings: ISO 8601 with milliseconds, UTC. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** HTTP-date for Last-Modified. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}
