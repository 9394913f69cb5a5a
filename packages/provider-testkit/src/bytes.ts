import { createHash } from 'node:crypto'

/**
 * `total` deterministic pseudo-random bytes, produced chunk by chunk so that even a large
 * body is never held whole. The same seed gives the same bytes.
 */
export async function* pseudoRandomChunks(
  total: number,
  options: { chunkSize?: number; seed?: number } = {},
): AsyncGenerator<Uint8Array> {
  const chunkSize = options.chunkSize ?? 1 << 20
  let state = options.seed ?? 7
  for (let sent = 0; sent < total; sent += chunkSize) {
    const chunk = Buffer.allocUnsafe(Math.min(chunkSize, total - sent))
    let i = 0
    for (; i + 4 <= chunk.length; i += 4) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0
      chunk.writeUInt32LE(state, i)
    }
    for (; i < chunk.length; i++) chunk[i] = i & 0xff
    yield chunk
  }
}

/** The hex sha256 of a streamed body. */
export async function sha256Of(source: AsyncIterable<Uint8Array> | Uint8Array): Promise<string> {
  const hash = createHash('sha256')
  if (source instanceof Uint8Array) hash.update(source)
  else for await (const chunk of source) hash.update(chunk)
  return hash.digest('hex')
}
