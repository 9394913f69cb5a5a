import { randomBytes } from 'node:crypto'
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import {
  type BlobData,
  type GuardedConnection,
  ProviderError,
  readBytes,
} from '@nvisy/provider-core'
import { pseudoRandomChunks, readAll, sha256Of } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createBucket,
  deleteBucket,
  listKeys,
  randomBucketName,
  s3Input,
  s3SkipReason,
  testS3Client,
} from './__fixtures__/s3-test-server.js'
import { s3Provider } from './s3-provider.js'

const skip = await s3SkipReason()
const client = testS3Client()
const bucket = randomBucketName('int')
const signal = new AbortController().signal

async function readBlobs(
  connection: GuardedConnection,
  stream: Record<string, unknown>,
  after?: unknown,
): Promise<BlobData[]> {
  return (await readAll(connection, stream, { after })).map((item) => item.data as BlobData)
}

describe.skipIf(skip)('s3 provider against the S3 server', () => {
  let connection: GuardedConnection
  beforeAll(async () => {
    await createBucket(client, bucket)
    connection = await s3Provider.connect(s3Input(bucket))
  })
  afterAll(async () => {
    await connection?.close()
    await deleteBucket(client, bucket).catch(() => {})
    client.destroy()
  })

  it('streams a 64 MiB object through a multipart upload and back with the same sha256', async () => {
    const size = 64 * 1024 * 1024
    const expected = await sha256Of(pseudoRandomChunks(size))
    const result = await connection.write(
      { prefix: 'big/' },
      [
        {
          kind: 'blob',
          key: 'object.bin',
          body: pseudoRandomChunks(size),
          size,
          contentType: 'application/octet-stream',
        },
      ],
      { signal },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/object.bin' }))
    expect(head.ContentLength).toBe(size)
    expect(head.ETag).toMatch(/-\d+"$/) // a multipart ETag: the body went up in parts
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

  it('handles keys with spaces, unicode and reserved characters', async () => {
    const keys = ['a b.txt', 'naïve/ü.txt', 'x+y=z&1%.txt', "quote'(1)!.txt", 'deep//double.txt']
    const result = await connection.write(
      { prefix: 'odd/' },
      keys.map((key) => ({ kind: 'blob' as const, key, body: Buffer.from(key) })),
      { signal },
    )
    expect(result.failed).toEqual([])
    const blobs = await readBlobs(connection, { prefix: 'odd/' })
    expect(blobs.map((b) => b.key).sort()).toEqual(keys.map((k) => `odd/${k}`).sort())
    for (const blob of blobs)
      expect((await readBytes(blob.body)).toString()).toBe(blob.key.slice(4))
  })

  it('filters by glob, suffix and last-modified watermark', async () => {
    const put = (key: string) =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }))
    await Promise.all(['f/a.csv', 'f/b.json', 'f/sub/c.csv', 'f/sub/d.txt'].map(put))
    expect(
      (await readBlobs(connection, { prefix: 'f/', glob: '**/*.csv' })).map((b) => b.key),
    ).toEqual(['f/a.csv', 'f/sub/c.csv'])
    expect(
      (await readBlobs(connection, { prefix: 'f/', glob: '*.csv' })).map((b) => b.key),
    ).toEqual(['f/a.csv'])
    expect(
      (await readBlobs(connection, { prefix: 'f/', suffix: '.txt' })).map((b) => b.key),
    ).toEqual(['f/sub/d.txt'])
    const future = new Date(Date.now() + 3600_000).toISOString()
    expect(await readBlobs(connection, { prefix: 'f/', modifiedSince: future })).toEqual([])
    const past = new Date(Date.now() - 3600_000).toISOString()
    expect((await readBlobs(connection, { prefix: 'f/', modifiedSince: past })).length).toBe(4)
  })

  it('pages through listings and resumes across page boundaries', async () => {
    const keys = Array.from({ length: 23 }, (_, i) => `p/${String(i).padStart(3, '0')}`)
    await Promise.all(
      keys.map((key) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }))),
    )
    const all = await readBlobs(connection, { prefix: 'p/', pageSize: 5, metadata: false })
    expect(all.map((b) => b.key)).toEqual(keys)
    const rest = await readBlobs(connection, { prefix: 'p/', pageSize: 5 }, { key: keys[9] })
    expect(rest.map((b) => b.key)).toEqual(keys.slice(10))
  })

  it('create-only mode reports an existing key as a data failure for that blob alone', async () => {
    const stream = { prefix: 'once/', createOnly: true }
    const first = await connection.write(
      stream,
      [{ kind: 'blob', key: 'a', body: Buffer.from('1') }],
      { signal },
    )
    expect(first).toEqual({ written: 1, failed: [] })
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
    expect(second.failed[0]!.error.message).toContain('already exists')
    const [a] = await readBlobs(connection, { prefix: 'once/a' })
    expect((await readBytes(a!.body)).toString()).toBe('1')
    expect(await listKeys(client, bucket, 'once/')).toEqual(['once/a', 'once/b'])
  })

  it('fails the body of an object overwritten after it was listed as data, at its key', async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'changed/a', Body: 'old' }))
    const [blob] = await readBlobs(connection, { prefix: 'changed/' })
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'changed/a', Body: 'new' }))
    const error = await readBytes(blob!.body).catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.kind).toBe('data')
    expect((error as ProviderError).cursor).toEqual({ key: 'changed/a' })
    expect((error as Error).message).toBe(
      'object "changed/a" changed after it was listed; the next run reads its new version',
    )
  })

  it('discovers top-level prefixes', async () => {
    const streams = await connection.discover()
    const prefixes = streams.map((s) => s.stream.prefix)
    expect(prefixes).toContain('')
    expect(prefixes).toContain('big/')
    expect(streams.every((s) => s.data === 'blob')).toBe(true)
  })

  it('a missing bucket is not_found, on check and on read, naming the bucket', async () => {
    const missing = await s3Provider.connect(s3Input(`${bucket}-missing`))
    const checkError = await missing.check().catch((e: unknown) => e)
    expect(ProviderError.isInstance(checkError) && checkError.kind).toBe('not_found')
    expect((checkError as Error).message).toContain(`${bucket}-missing`)
    const readError = await readBlobs(missing, { prefix: '' }).catch((e: unknown) => e)
    expect(ProviderError.isInstance(readError) && readError.kind).toBe('not_found')
    expect((readError as ProviderError).providerId).toBe('s3')
    await missing.close()
  })

  it('a refused connection is transient', async () => {
    const dead = await s3Provider.connect({
      credentials: s3Input(bucket).credentials,
      params: { bucket, endpoint: 'http://127.0.0.1:1', maxAttempts: 1 },
    })
    const error = await dead.check().catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.kind).toBe('transient')
    await dead.close()
  })

  it('abort cancels an upload in flight', async () => {
    const controller = new AbortController()
    const size = 32 * 1024 * 1024
    async function* slow() {
      for await (const chunk of pseudoRandomChunks(size)) {
        yield chunk
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    setTimeout(() => controller.abort(), 100)
    const outcome = await connection
      .write({ prefix: 'aborted/' }, [{ kind: 'blob', key: 'x', body: slow(), size }], {
        signal: controller.signal,
      })
      .catch((e: unknown) => e)
    expect(outcome).toBeInstanceOf(Error)
    expect(await listKeys(client, bucket, 'aborted/')).toEqual([])
  })

  it('keeps the secret key out of errors for a wrong secret', async () => {
    const secret = `wrong-${randomBytes(8).toString('hex')}`
    const bad = await s3Provider.connect(s3Input(bucket, { secretAccessKey: secret }))
    const error = await bad.check().catch((e: unknown) => e)
    expect(ProviderError.isInstance(error) && error.kind).toBe('auth')
    expect(JSON.stringify((error as ProviderError).toJSON())).not.toContain(secret)
    expect(String((error as Error).stack)).not.toContain(secret)
    await bad.close()
  })
})
