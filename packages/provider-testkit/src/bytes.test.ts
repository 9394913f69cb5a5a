import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { pseudoRandomChunks, sha256Of } from './bytes.js'

describe('byte helpers', () => {
  it('produces the requested number of bytes, the same for the same seed, in bounded chunks', async () => {
    const collect = async (seed: number) => {
      const chunks: Uint8Array[] = []
      for await (const chunk of pseudoRandomChunks(3 * 1024 + 3, { chunkSize: 1024, seed }))
        chunks.push(chunk)
      return chunks
    }
    const a = await collect(1)
    expect(a.map((c) => c.byteLength)).toEqual([1024, 1024, 1024, 3])
    expect(Buffer.concat(await collect(1)).equals(Buffer.concat(a))).toBe(true)
    expect(Buffer.concat(await collect(2)).equals(Buffer.concat(a))).toBe(false)
  })

  it('hashes a stream like the whole body', async () => {
    const parts: Uint8Array[] = []
    for await (const chunk of pseudoRandomChunks(5000, { chunkSize: 700 })) parts.push(chunk)
    const body = Buffer.concat(parts)
    const expected = createHash('sha256').update(body).digest('hex')
    expect(await sha256Of(pseudoRandomChunks(5000, { chunkSize: 700 }))).toBe(expected)
    expect(await sha256Of(body)).toBe(expected)
  })
})
