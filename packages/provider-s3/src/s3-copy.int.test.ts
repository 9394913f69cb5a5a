// Server-side copies against the real S3 server: a sink given `serverSideCopy` copies each blob
// from its origin inside the store (CopyObject, UploadPartCopy above the cutoff), never opening
// its body, and streams what the store will not copy.
import { createHash, randomBytes } from 'node:crypto'
import {
  DeleteBucketPolicyCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3'
import { type BlobData, type GuardedConnection, memoryLogger } from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createBucket,
  deleteBucket,
  emptyBucket,
  listKeys,
  randomBucketName,
  s3Input,
  s3SkipReason,
  testS3Client,
} from './__fixtures__/s3-test-server.js'
import { s3Provider } from './s3-provider.js'

const skip = await s3SkipReason()
const client = testS3Client()
const from = randomBucketName('copy-src')
const to = randomBucketName('copy-dst')
const signal = new AbortController().signal
const MiB = 1024 * 1024

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

async function objectHash(bucket: string, key: string): Promise<string> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  const hash = createHash('sha256')
  for await (const chunk of response.Body as AsyncIterable<Uint8Array>) hash.update(chunk)
  return hash.digest('hex')
}

/** The source's blobs under `prefix`, each body wrapped to record whether anything opened it. */
async function listed(source: GuardedConnection, prefix: string, settings: object = {}) {
  const opened = new Set<string>()
  const blobs = (await readAll(source, { prefix, ...settings })).map((item): BlobData => {
    const blob = item.data as BlobData
    const body = blob.body as AsyncIterable<Uint8Array>
    return {
      ...blob,
      body: {
        [Symbol.asyncIterator]() {
          opened.add(blob.key)
          return body[Symbol.asyncIterator]()
        },
      },
    }
  })
  return { blobs, opened }
}

describe.skipIf(skip)('server-side copies on the S3 server', () => {
  const expected = new Map<string, string>()
  let source: GuardedConnection
  let sink: GuardedConnection
  const logger = memoryLogger()

  beforeAll(async () => {
    await createBucket(client, from)
    await createBucket(client, to)
    const put = async (key: string, body: Uint8Array, extra: object = {}) => {
      await client.send(new PutObjectCommand({ Bucket: from, Key: key, Body: body, ...extra }))
      expected.set(key, sha256(body))
    }
    await put('small/plain.txt', Buffer.from('hello, copy\n'), {
      ContentType: 'text/plain; charset=utf-8',
      Metadata: { team: '=?UTF-8?B?ZG9ubsOpZXM=?=', origin: 'seed' },
    })
    await put('small/dir/a file+ü?#%.bin', new Uint8Array(randomBytes(300_000)))
    await put('small/empty.bin', new Uint8Array(0))
    await put('big/object.bin', new Uint8Array(randomBytes(23 * MiB)), {
      ContentType: 'application/x-big',
      Metadata: { part: 'many' },
    })
    source = await s3Provider.connect(s3Input(from))
    sink = await s3Provider.connect(s3Input(to), { logger })
  }, 120_000)

  afterAll(async () => {
    await Promise.allSettled([source?.close(), sink?.close()])
    await deleteBucket(client, from).catch(() => {})
    await deleteBucket(client, to).catch(() => {})
    client.destroy()
  })

  it('copies each object inside the store: bodies never opened, bytes, ETag, content type and metadata kept', async () => {
    await emptyBucket(client, to)
    const { blobs, opened } = await listed(source, 'small/')
    expect(blobs.map((b) => b.origin?.bucket)).toEqual([from, from, from])
    const result = await sink.write({ prefix: 'out/' }, blobs, { signal, serverSideCopy: true })
    expect(result).toEqual({ written: 3, failed: [] })
    expect([...opened]).toEqual([])
    for (const blob of blobs) {
      expect(await objectHash(to, `out/${blob.key}`), blob.key).toBe(expected.get(blob.key))
      const copied = await client.send(
        new HeadObjectCommand({ Bucket: to, Key: `out/${blob.key}` }),
      )
      expect(copied.ETag).toBe(blob.origin!.etag)
    }
    const head = await client.send(
      new HeadObjectCommand({ Bucket: to, Key: 'out/small/plain.txt' }),
    )
    expect(head.ContentType).toBe('text/plain; charset=utf-8')
    expect(head.Metadata).toEqual({ team: '=?UTF-8?B?ZG9ubsOpZXM=?=', origin: 'seed' })
    // What the sink wrote reads back like the source: the metadata decoded.
    const [plain] = (await listed(sink, 'out/small/plain')).blobs
    expect(plain!.metadata).toEqual({ team: 'données', origin: 'seed' })
  })

  it('copies an object above the cutoff in parts (UploadPartCopy), identical by sha256', async () => {
    const { blobs, opened } = await listed(source, 'big/')
    const result = await sink.write(
      { prefix: 'parts/', copyCutoffBytes: 8 * MiB, partSizeBytes: 5 * MiB },
      blobs,
      { signal, serverSideCopy: true },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    expect([...opened]).toEqual([])
    const head = await client.send(
      new HeadObjectCommand({ Bucket: to, Key: 'parts/big/object.bin' }),
    )
    // The source is one part; the copy is five parts of 5 MiB: made by UploadPartCopy.
    expect(blobs[0]!.origin!.etag).not.toMatch(/-\d+"$/)
    expect(head.ETag).toMatch(/-5"$/)
    expect(head.ContentLength).toBe(23 * MiB)
    expect(head.ContentType).toBe('application/x-big')
    expect(head.Metadata).toEqual({ part: 'many' })
    expect(await objectHash(to, 'parts/big/object.bin')).toBe(expected.get('big/object.bin'))
  }, 120_000)

  it('keeps content type and metadata as stored when the source reads none (metadata: false), whole and in parts', async () => {
    const small = await listed(source, 'small/plain', { metadata: false })
    const big = await listed(source, 'big/', { metadata: false })
    const blobs = [...small.blobs, ...big.blobs]
    expect(blobs.map((b) => b.contentType)).toEqual([undefined, undefined])
    const result = await sink.write(
      { prefix: 'bare/', copyCutoffBytes: 8 * MiB, partSizeBytes: 5 * MiB },
      blobs,
      { signal, serverSideCopy: true },
    )
    expect(result).toEqual({ written: 2, failed: [] })
    expect([...small.opened, ...big.opened]).toEqual([])
    const plain = await client.send(
      new HeadObjectCommand({ Bucket: to, Key: 'bare/small/plain.txt' }),
    )
    expect(plain.ContentType).toBe('text/plain; charset=utf-8')
    expect(plain.Metadata).toEqual({ team: '=?UTF-8?B?ZG9ubsOpZXM=?=', origin: 'seed' })
    const large = await client.send(
      new HeadObjectCommand({ Bucket: to, Key: 'bare/big/object.bin' }),
    )
    expect(large.ETag).toMatch(/-5"$/)
    expect(large.ContentType).toBe('application/x-big')
    expect(large.Metadata).toEqual({ part: 'many' })
  }, 120_000)

  it('streams when the write does not ask for a server-side copy, origin or not', async () => {
    const { blobs, opened } = await listed(source, 'small/')
    const result = await sink.write({ prefix: 'streamed/' }, blobs, { signal })
    expect(result).toEqual({ written: 3, failed: [] })
    expect([...opened].sort()).toEqual(blobs.map((b) => b.key).sort())
    for (const blob of blobs)
      expect(await objectHash(to, `streamed/${blob.key}`)).toBe(expected.get(blob.key))
  })

  it('streams when the sink stream turns copies off', async () => {
    const { blobs, opened } = await listed(source, 'small/plain')
    const result = await sink.write({ prefix: 'off/', serverSideCopy: false }, blobs, {
      signal,
      serverSideCopy: true,
    })
    expect(result).toEqual({ written: 1, failed: [] })
    expect([...opened]).toEqual(['small/plain.txt'])
  })

  it('a copy the server refuses (AccessDenied) is streamed instead, logged once at info', async () => {
    // The sink bucket's policy denies every copy into it; plain uploads are allowed.
    await client.send(
      new PutBucketPolicyCommand({
        Bucket: to,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Deny',
              Principal: '*',
              Action: 's3:PutObject',
              Resource: `arn:aws:s3:::${to}/*`,
              Condition: { StringLike: { 's3:x-amz-copy-source': '*' } },
            },
          ],
        }),
      }),
    )
    const refusing: GuardedConnection = await s3Provider.connect(s3Input(to), { logger })
    const before = logger.lines.length
    try {
      const { blobs, opened } = await listed(source, 'small/')
      const result = await refusing.write({ prefix: 'refused/' }, blobs, {
        signal,
        serverSideCopy: true,
      })
      expect(result).toEqual({ written: 3, failed: [] })
      expect([...opened].sort()).toEqual(blobs.map((b) => b.key).sort())
      for (const blob of blobs)
        expect(await objectHash(to, `refused/${blob.key}`)).toBe(expected.get(blob.key))
      const lines = logger.lines.slice(before)
      const refusals = lines.filter((l) => /server-side copy refused/.test(l.message ?? ''))
      expect(refusals.map((l) => l.level)).toEqual(['info', 'debug', 'debug'])
      expect(refusals[0]!.message).toContain('AccessDenied')
      expect(JSON.stringify(lines)).not.toContain(s3Input(to).credentials.secretAccessKey)
    } finally {
      await refusing.close()
      await client.send(new DeleteBucketPolicyCommand({ Bucket: to }))
    }
  })

  it('an object rewritten after it was listed fails alone, as a streamed copy does', async () => {
    await client.send(new PutObjectCommand({ Bucket: from, Key: 'moving/a.txt', Body: 'first a' }))
    await client.send(new PutObjectCommand({ Bucket: from, Key: 'moving/b.txt', Body: 'first b' }))
    const { blobs } = await listed(source, 'moving/')
    await client.send(new PutObjectCommand({ Bucket: from, Key: 'moving/b.txt', Body: 'second' }))
    for (const serverSideCopy of [false, true]) {
      const prefix = serverSideCopy ? 'moving-copied/' : 'moving-streamed/'
      const result = await sink.write({ prefix }, blobs, { signal, serverSideCopy })
      expect(result.written, prefix).toBe(1)
      expect(
        result.failed.map((f) => [f.index, f.error.kind]),
        prefix,
      ).toEqual([[1, 'data']])
      expect(result.failed[0]!.error.message).toMatch(/changed after it was listed/)
      expect(await listKeys(client, to, prefix)).toEqual([`${prefix}moving/a.txt`])
    }
  })

  it('create-only: an existing key fails alone, the others are copied', async () => {
    await emptyBucket(client, to)
    await client.send(
      new PutObjectCommand({ Bucket: to, Key: 'once/small/plain.txt', Body: 'already here' }),
    )
    const { blobs, opened } = await listed(source, 'small/')
    const result = await sink.write({ prefix: 'once/', createOnly: true }, blobs, {
      signal,
      serverSideCopy: true,
    })
    expect(result.written).toBe(2)
    const plainIndex = blobs.findIndex((b) => b.key === 'small/plain.txt')
    expect(result.failed.map((f) => f.index)).toEqual([plainIndex])
    expect(result.failed[0]!.error.message).toMatch(/already exists/)
    expect([...opened]).toEqual([])
    const kept = await client.send(
      new GetObjectCommand({ Bucket: to, Key: 'once/small/plain.txt' }),
    )
    expect(await kept.Body!.transformToString()).toBe('already here')
  })
})
