import {
  type BlobData,
  type GuardedConnection,
  ProviderError,
  readBytes,
} from '@nvisy/provider-core'
import { pseudoRandomChunks, readAll, sha256Of } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  gcsInput,
  gcsSkipReason,
  listNames,
  randomBucketName,
  testStorage,
} from './__fixtures__/gcs-test-server.js'
import { gcsProvider } from './gcs-provider.js'

const skip = await gcsSkipReason()
const storage = testStorage()
const bucket = randomBucketName('int')
const signal = new AbortController().signal

async function readBlobs(
  connection: GuardedConnection,
  stream: Record<string, unknown>,
  after?: unknown,
): Promise<BlobData[]> {
  return (await readAll(connection, stream, { after })).map((item) => item.data as BlobData)
}

describe.skipIf(skip)('gcs provider against the GCS emulator', () => {
  let connection: GuardedConnection
  beforeAll(async () => {
    await storage.createBucket(bucket)
    connection = await gcsProvider.connect(gcsInput(bucket))
  })
  afterAll(async () => {
    await connection?.close()
    await storage
      .bucket(bucket)
      .deleteFiles({ force: true })
      .catch(() => {})
    await storage
      .bucket(bucket)
      .delete()
      .catch(() => {})
  })

  it('streams a 64 MiB object through a resumable upload and back with the same sha256', async () => {
    const size = 64 * 1024 * 1024
    const expected = await sha256Of(pseudoRandomChunks(size))
    const result = await connection.write(
      { prefix: 'big/' },
      [{ kind: 'blob', key: 'object.bin', body: pseudoRandomChunks(size) }],
      { signal },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    const [blob] = await readBlobs(connection, { prefix: 'big/' })
    expect(blob!.size).toBe(size)
    expect(await sha256Of(blob!.body as AsyncIterable<Uint8Array>)).toBe(expected)
  }, 120_000)

  it('keeps content type, user metadata (also non-ASCII) and last-modified', async () => {
    const metadata = { origin: 'unit-test', label: 'café ünïcode ✓' }
    await connection.write(
      { prefix: 'meta/' },
      [
        {
          kind: 'blob',
          key: 'doc.json',
          body: Buffer.from('{"a":1}'),
          contentType: 'application/json',
          metadata,
        },
      ],
      { signal },
    )
    const [blob] = await readBlobs(connection, { prefix: 'meta/' })
    expect(blob!.contentType).toBe('application/json')
    expect(blob!.metadata).toEqual(metadata)
    expect(blob!.lastModified).toBeInstanceOf(Date)
    expect((await readBytes(blob!.body)).toString()).toBe('{"a":1}')
  })

  it('handles names with spaces, unicode and reserved characters', async () => {
    const keys = ['a b.txt', 'naïve/ü.txt', 'x+y=z&1%.txt', 'hash#tag?.txt', 'deep//double.txt']
    const result = await connection.write(
      { prefix: 'odd/' },
      keys.map((key) => ({ kind: 'blob' as const, key, body: Buffer.from(key) })),
      {
        signal,
      },
    )
    expect(result.failed).toEqual([])
    const blobs = await readBlobs(connection, { prefix: 'odd/' })
    expect(blobs.map((b) => b.key).sort()).toEqual(keys.map((k) => `odd/${k}`).sort())
    for (const blob of blobs)
      expect((await readBytes(blob.body)).toString()).toBe(blob.key.slice(4))
  })

  it('lists in name order, pages, filters and resumes across page boundaries', async () => {
    const names = Array.from(
      { length: 23 },
      (_, i) => `p/${String(i).padStart(3, '0')}${i % 2 ? '.csv' : '.json'}`,
    )
    await Promise.all(
      names.map((name) => storage.bucket(bucket).file(name).save(name, { resumable: false })),
    )
    const all = await readBlobs(connection, { prefix: 'p/', pageSize: 5 })
    expect(all.map((b) => b.key)).toEqual(names)
    const rest = await readBlobs(connection, { prefix: 'p/', pageSize: 5 }, { key: names[9] })
    expect(rest.map((b) => b.key)).toEqual(names.slice(10))
    expect((await readBlobs(connection, { prefix: 'p/', glob: '*.csv' })).length).toBe(11)
    expect((await readBlobs(connection, { prefix: 'p/', suffix: '.json' })).length).toBe(12)
    const future = new Date(Date.now() + 3600_000).toISOString()
    expect(await readBlobs(connection, { prefix: 'p/', modifiedSince: future })).toEqual([])
  })

  it('create-only mode reports an existing name as a data failure for that blob alone', async () => {
    const stream = { prefix: 'once/', createOnly: true }
    expect(
      await connection.write(stream, [{ kind: 'blob', key: 'a', body: Buffer.from('1') }], {
        signal,
      }),
    ).toEqual({
      written: 1,
      failed: [],
    })
    const second = await connection.write(
      stream,
      [
        { kind: 'blob', key: 'a', body: Buffer.from('2') },
        { kind: 'blob', key: 'b', body: Buffer.from('3') },
      ],
      { signal },
    )
    expect(second.written).toBe(1)
    expect(second.failed.map((f) => [f.index, f.error.kind])).toEqual([[0, 'data']])
    const [a] = await readBlobs(connection, { prefix: 'once/a' })
    expect((await readBytes(a!.body)).toString()).toBe('1')
    expect(await listNames(storage, bucket, 'once/')).toEqual(['once/a', 'once/b'])
  })

  it('discovers top-level prefixes', async () => {
    const prefixes = (await connection.discover()).map((s) => s.stream.prefix)
    expect(prefixes).toContain('')
    expect(prefixes).toContain('big/')
  })

  it('a missing bucket is not_found on check, naming the bucket', async () => {
    const missing = await gcsProvider.connect(gcsInput(`${bucket}-missing`))
    const error = await missing.check().catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.kind).toBe('not_found')
    expect((error as Error).message).toContain(`${bucket}-missing`)
    await missing.close()
  })

  it('a malformed key file is a config error that quotes nothing of it', async () => {
    const error = await gcsProvider
      .connect(gcsInput(bucket, { serviceAccountJson: '{not json, secret-part' }))
      .catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.kind).toBe('config')
    expect(String((error as Error).stack)).not.toContain('secret-part')
  })
})
