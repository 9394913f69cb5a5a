import {
  type BlobData,
  type GuardedConnection,
  ProviderError,
  readBytes,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  gcsInput,
  gcsSkipReason,
  randomBucketName,
  testStorage,
} from './__fixtures__/gcs-test-server.js'
import { gcsProvider } from './gcs-provider.js'

const skip = await gcsSkipReason()
const storage = testStorage()
const bucket = randomBucketName('part')

// Small pages, so ranges start and stop in the middle of a page and across pages; a key
// outside the prefix and one the suffix drops. Only keys whose UTF-16 and UTF-8 orders agree:
// the emulator lists in UTF-16 order, Cloud Storage in UTF-8 byte order (the test below that
// needs the difference runs against Cloud Storage only).
const stream = { prefix: 'p/', suffix: '.txt', pageSize: 7 }
const keys = [
  ...Array.from({ length: 40 }, (_, i) => `p/k-${String(i).padStart(2, '0')}.txt`),
  'p/éx.txt',
  'p/～x.txt',
]

async function put(key: string) {
  await storage.bucket(bucket).file(key).save(`body of ${key}`, { resumable: false })
}

interface Read {
  key: string
  body: string
  context: unknown
}

async function readObjects(
  connection: GuardedConnection,
  settings: unknown,
  after?: unknown,
): Promise<Read[]> {
  // Settings through JSON, like a stored plan; bodies are fetched lazily, so reading them
  // after the listing is done reads the same bytes.
  const items = await readAll(connection, JSON.parse(JSON.stringify(settings)), { after })
  const out: Read[] = []
  for (const item of items) {
    const blob = item.data as BlobData
    out.push({
      key: blob.key,
      body: (await readBytes(blob.body)).toString(),
      context: item.context,
    })
  }
  return out
}

async function plan(connection: GuardedConnection, settings: unknown, count: number) {
  // Through JSON, like a stored plan.
  return JSON.parse(JSON.stringify(await connection.partition(settings, { count }))) as {
    partitions: Record<string, unknown>[]
    reason?: string
  }
}

describe.skipIf(skip)('gcs partition against the GCS emulator', () => {
  let connection: GuardedConnection
  beforeAll(async () => {
    await storage.createBucket(bucket)
    for (const key of [...keys, 'p/other.bin', 'q/outside.txt']) await put(key)
    connection = await gcsProvider.connect(gcsInput(bucket))
  })
  afterAll(async () => {
    await connection?.close()
    await storage.bucket(bucket).deleteFiles({ force: true })
    await storage
      .bucket(bucket)
      .delete()
      .catch(() => {})
  })

  it('declares the capability', () => {
    expect(gcsProvider.capabilities.partition).toBe(true)
  })

  it('splits into disjoint key ranges whose reads, in order, are exactly the whole read (keys and bytes)', async () => {
    const whole = await readObjects(connection, stream)
    expect(whole.map((r) => r.key)).toEqual(keys)
    for (const r of whole) expect(r.body).toBe(`body of ${r.key}`)
    for (const count of [2, 3, 5, 8]) {
      const { partitions } = await plan(connection, stream, count)
      expect(partitions.length).toBe(count)
      const parts = []
      for (const partition of partitions) parts.push(await readObjects(connection, partition))
      for (const part of parts) expect(part.length).toBeGreaterThan(0)
      const flat = parts.flat()
      expect(flat.map((r) => [r.key, r.body])).toEqual(whole.map((r) => [r.key, r.body]))
      expect(new Set(flat.map((r) => r.key)).size).toBe(flat.length)
    }
  })

  it('cuts at quantiles of the listing: the first range keeps the lower bound, the last is open', async () => {
    const { partitions } = await plan(connection, stream, 2)
    for (const partition of partitions) expect(partition).toMatchObject(stream)
    expect(partitions.map((p) => p.range)).toEqual([
      { through: 'p/k-20.txt' },
      { after: 'p/k-20.txt' },
    ])
    // A partition of a stream with its own range stays inside it.
    const inner = { ...stream, range: { after: 'p/k-09.txt', through: 'p/k-29.txt' } }
    const split = await plan(connection, inner, 2)
    expect(split.partitions.map((p) => p.range)).toEqual([
      { after: 'p/k-09.txt', through: 'p/k-19.txt' },
      { after: 'p/k-19.txt', through: 'p/k-29.txt' },
    ])
    expect((await readObjects(connection, split.partitions[1])).map((r) => r.key)).toEqual(
      keys.slice(20, 30),
    )
  })

  it('resumes each partition from a context in its middle with exactly the rest of it', async () => {
    const { partitions } = await plan(connection, stream, 3)
    for (const partition of partitions) {
      const all = await readObjects(connection, partition)
      for (const k of [0, Math.floor(all.length / 2), all.length - 1]) {
        const rest = await readObjects(
          connection,
          partition,
          JSON.parse(JSON.stringify(all[k]!.context)),
        )
        expect(rest.map((r) => r.key)).toEqual(all.slice(k + 1).map((r) => r.key))
      }
    }
  })

  it('reads an object added after planning in exactly one partition', async () => {
    const { partitions } = await plan(connection, stream, 3)
    const added = ['p/a-first.txt', 'p/k-05a.txt', 'p/k-25a.txt', 'p/～z.txt']
    for (const key of added) await put(key)
    try {
      const whole = await readObjects(connection, stream)
      const parts = []
      for (const partition of partitions) parts.push(await readObjects(connection, partition))
      const flat = parts.flat().map((r) => r.key)
      expect(flat).toEqual(whole.map((r) => r.key))
      for (const key of added) expect(flat.filter((k) => k === key)).toEqual([key])
      expect(parts[0]!.map((r) => r.key)).toContain('p/a-first.txt')
      expect(parts[2]!.map((r) => r.key)).toContain('p/～z.txt')
    } finally {
      for (const key of added) await storage.bucket(bucket).file(key).delete()
    }
  })

  it('covers an empty stream and fewer objects than partitions', async () => {
    const empty = await plan(connection, { prefix: 'none/' }, 4)
    expect(empty.partitions).toHaveLength(1)
    expect(empty.partitions[0]).toMatchObject({ prefix: 'none/' })
    expect(empty.partitions[0]!.range).toBeUndefined()
    expect(empty.reason).toMatch(/no object/)
    const few = await plan(connection, { prefix: 'p/k-0', glob: '[12].txt' }, 4)
    expect(few.partitions.length).toBe(2)
    const read = []
    for (const partition of few.partitions) read.push(...(await readObjects(connection, partition)))
    expect(read.map((r) => r.key)).toEqual(['p/k-01.txt', 'p/k-02.txt'])
  })

  it('rejects a key range that is empty or not made of strings, naming the field', async () => {
    const bad = { ...stream, range: { after: 'p/k-20.txt', through: 'p/k-10.txt' } }
    const readError = await readObjects(connection, bad).catch((error: unknown) => error)
    expect(readError).toBeInstanceOf(ProviderError)
    expect((readError as ProviderError).kind).toBe('config')
    expect((readError as ProviderError).message).toContain('/stream/range/through')
    const same = { ...stream, range: { after: 'p/k-20.txt', through: 'p/k-20.txt' } }
    await expect(connection.partition(same, { count: 2 })).rejects.toThrow(
      /\/stream\/range\/through/,
    )
    await expect(readObjects(connection, { ...stream, range: { after: 5 } })).rejects.toThrow(
      /range\/after/,
    )
    await expect(
      connection.partition({ ...stream, range: { through: 'x', upTo: 'y' } }, { count: 2 }),
    ).rejects.toThrow(/range/)
  })
})
