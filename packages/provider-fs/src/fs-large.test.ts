import { stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BlobData } from '@nvisy/provider-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connectTo, readAll, signal, tempRoot } from './__fixtures__/helpers.js'

const SIZE = 200 * 1024 * 1024
let root: string
let cleanup: () => Promise<void>
beforeAll(async () => {
  ;({ root, cleanup } = await tempRoot('large'))
  // A sparse 200 MiB file: instant to make, read back as real zero bytes.
  await writeFile(join(root, 'big.bin'), '')
  await truncate(join(root, 'big.bin'), SIZE)
})
afterAll(() => cleanup())

it('streams a 200 MiB file in chunks, to a reader and through the sink, with flat memory', async () => {
  const connection = await connectTo(root)
  const [item] = await readAll(connection, { kind: 'blob', prefix: 'big' })
  const blob = item!.data as BlobData
  expect(blob.size).toBe(SIZE)
  expect(blob.body).not.toBeInstanceOf(Uint8Array)

  const before = process.memoryUsage().rss
  let peak = before
  let total = 0
  let chunks = 0
  let largest = 0
  for await (const chunk of blob.body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength
    chunks++
    largest = Math.max(largest, chunk.byteLength)
    if (chunks % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss)
  }
  expect(total).toBe(SIZE)
  expect(largest).toBeLessThanOrEqual(256 * 1024)
  expect(chunks).toBeGreaterThanOrEqual(SIZE / (256 * 1024))
  expect(peak - before).toBeLessThan(100 * 1024 * 1024)

  // The read body, piped into the sink: a copy that never holds the file whole either.
  let copyPeak = process.memoryUsage().rss
  const sampled = (async function* () {
    let n = 0
    for await (const chunk of blob.body as AsyncIterable<Uint8Array>) {
      if (++n % 64 === 0) copyPeak = Math.max(copyPeak, process.memoryUsage().rss)
      yield chunk
    }
  })()
  const result = await connection.write(
    { kind: 'blob' },
    [{ kind: 'blob', key: 'copy/big.bin', body: sampled, size: SIZE }],
    { signal: signal() },
  )
  expect(result).toEqual({ written: 1, failed: [] })
  expect((await stat(join(root, 'copy/big.bin'))).size).toBe(SIZE)
  expect(copyPeak - before).toBeLessThan(100 * 1024 * 1024)
}, 120_000)
