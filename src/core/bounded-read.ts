// Small request and answer bodies (JSON, replica batches) are read whole,
// but never past a limit: one function, so every such read is bounded.

/** Collects `stream` into one buffer; throws `tooLarge()` as soon as more
 * than `maxBytes` arrived (the rest is not read). */
export async function readBounded(stream: AsyncIterable<unknown>, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}
