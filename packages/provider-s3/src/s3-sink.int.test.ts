// How the sink signs and checks a streamed single-part object: with the source's MD5 (from its
// listed ETag) as Content-MD5 and an unsigned payload, and with a SHA-256 signed payload
// whenever that MD5 is not known or turns out not to be the MD5 of the bytes.
import { createHash, randomBytes } from 'node:crypto'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import {
  type BlobData,
  type GuardedConnection,
  isReplayableBody,
  readBytes,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createBucket,
  deleteBucket,
  randomBucketName,
  s3Input,
  s3SkipReason,
  testS3Client,
} from './__fixtures__/s3-test-server.js'
import { createS3Provider, s3Provider } from './s3-provider.js'
import { S3ObjectBody } from './s3-source.js'

const skip = await s3SkipReason()
const client = testS3Client()
const bucket = randomBucketName('sink')
const signal = new AbortController().signal

/** The headers of each PutObject / UploadPart the sink's client sent, as signed. */
const sent: { command: string; sha256: string | undefined; md5: string | undefined }[] = []
/** The keys of each GetObject the sink's client sent. */
const gets: string[] = []
const recording = testS3Client()
recording.middlewareStack.add(
  (next, context) => (args) => {
    const headers = (args.request as { headers?: Record<string, string> }).headers ?? {}
    if (context.commandName === 'GetObjectCommand') gets.push((args.input as { Key: string }).Key)
    if (context.commandName === 'PutObjectCommand' || context.commandName === 'UploadPartCommand')
      sent.push({
        command: context.commandName,
        sha256: headers['x-amz-content-sha256'],
        md5: headers['content-md5'],
      })
    return next(args)
  },
  { step: 'deserialize', name: 'recordSentHeaders' },
)

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest()
const etagOf = async (key: string) =>
  (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag
/** Whether the key exists (GetObject, so a store's listing lag cannot hide an object). */
const exists = (key: string) =>
  client.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then(
    async (response) => {
      await response.Body?.transformToByteArray()
      return true
    },
    (error: { $metadata?: { httpStatusCode?: number } }) => {
      if (error.$metadata?.httpStatusCode === 404) return false
      throw error
    },
  )

describe.skipIf(skip)('s3 sink signing and Content-MD5', () => {
  let connection: GuardedConnection
  beforeAll(async () => {
    await createBucket(client, bucket)
    connection = await createS3Provider({ client: recording }).connect(s3Input(bucket))
  })
  afterAll(async () => {
    await connection?.close()
    await deleteBucket(client, bucket).catch(() => {})
    client.destroy()
    recording.destroy()
  })
  beforeEach(() => {
    sent.length = 0
    gets.length = 0
  })

  it('sends a listed single-part object with its ETag as Content-MD5 and an unsigned payload', async () => {
    const body = Buffer.from('the bytes of a single-part object\n'.repeat(1000))
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'src/one.txt', Body: body }))
    const [item] = await readAll(connection, { prefix: 'src/' })
    const blob = item!.data as BlobData
    expect(blob.origin?.etag).toBe(`"${md5(body).toString('hex')}"`)
    const result = await connection.write({ prefix: 'dst/' }, [blob], { signal })
    expect(result).toEqual({ written: 1, failed: [] })
    expect(sent).toEqual([
      {
        command: 'PutObjectCommand',
        sha256: 'UNSIGNED-PAYLOAD',
        md5: md5(body).toString('base64'),
      },
    ])
    expect(await etagOf('dst/src/one.txt')).toBe(blob.origin!.etag)
  })

  it('puts the bytes with a signed payload when the origin ETag is not their MD5', async () => {
    // An SSE-KMS source, or another store's ETag form: 32 hex digits that are not the MD5.
    const body = Buffer.from('bytes whose MD5 is not the listed ETag')
    const other = md5(Buffer.from('something else')).toString('hex')
    const blob: BlobData = {
      kind: 'blob',
      key: 'opaque.bin',
      body,
      size: body.length,
      origin: { bucket, key: 'elsewhere', etag: `"${other}"`, size: body.length },
    }
    const result = await connection.write({ prefix: 'dst/' }, [blob], { signal })
    expect(result).toEqual({ written: 1, failed: [] })
    // First with the ETag as Content-MD5 (refused by the store), then signed.
    expect(sent.map((s) => [s.sha256 === 'UNSIGNED-PAYLOAD', s.md5])).toEqual([
      [true, Buffer.from(other, 'hex').toString('base64')],
      [false, undefined],
    ])
    expect(sent[1]!.sha256).toBe(createHash('sha256').update(body).digest('hex'))
    expect(await etagOf('dst/opaque.bin')).toBe(`"${md5(body).toString('hex')}"`)
    const [back] = await readAll(connection, { prefix: 'dst/opaque.bin' })
    expect(await readBytes((back!.data as BlobData).body)).toEqual(body)
  })

  it('streams a body of several chunks with Content-MD5; a refused digest goes to the logger, not the console, and the object is put signed', async () => {
    const parts = [Buffer.from('first chunk, '), Buffer.from('second chunk')]
    const body = Buffer.concat(parts)
    const other = md5(Buffer.from('not these bytes')).toString('hex')
    const debug: unknown[] = []
    const logger = {
      debug: (fields: unknown) => debug.push(fields),
      info: () => {},
      warn: () => {},
      error: () => {},
    }
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    // A client created by the provider (not given to it), so it gets the provider's SDK logger.
    const owned: GuardedConnection = await s3Provider.connect(s3Input(bucket), { logger })
    try {
      const result = await owned.write(
        { prefix: 'dst/' },
        [
          {
            kind: 'blob',
            key: 'chunks.bin',
            body: (async function* () {
              yield* parts
            })(),
            size: body.length,
            origin: { bucket, key: 'elsewhere', etag: `"${other}"`, size: body.length },
          },
        ],
        { signal },
      )
      expect(result).toEqual({ written: 1, failed: [] })
      expect(warn).not.toHaveBeenCalled()
      expect(JSON.stringify(debug)).toContain('non-retryable streaming request')
    } finally {
      warn.mockRestore()
      await owned.close()
    }
    expect(await etagOf('dst/chunks.bin')).toBe(`"${md5(body).toString('hex')}"`)
  })

  it('signs the payload of a blob without an origin, or whose size is not the listed one', async () => {
    const body = Buffer.from('no origin')
    const resized = Buffer.from('a body of another length than listed')
    const listed = md5(resized.subarray(0, 5)).toString('hex')
    const result = await connection.write(
      { prefix: 'dst/' },
      [
        { kind: 'blob', key: 'plain.txt', body, size: body.length },
        {
          kind: 'blob',
          key: 'resized.txt',
          body: (async function* () {
            yield resized
          })(),
          size: 5,
          origin: { bucket, key: 'x', etag: `"${listed}"`, size: 5 },
        },
      ],
      { signal },
    )
    expect(result).toEqual({ written: 2, failed: [] })
    expect(sent.map((s) => s.md5)).toEqual([undefined, undefined])
    expect(sent.every((s) => /^[0-9a-f]{64}$/.test(s.sha256 ?? ''))).toBe(true)
    expect(await etagOf('dst/resized.txt')).toBe(`"${md5(resized).toString('hex')}"`)
  })
  it('streams a listed object from its GetObject into its PutObject, and a long one through parts', async () => {
    // Many socket chunks: a body held in memory would have been joined or re-chunked.
    const body = randomBytes(3 * 1024 * 1024 + 17)
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'stream/one.bin', Body: body }))
    const [item] = await readAll(connection, { prefix: 'stream/' })
    const blob = item!.data as BlobData
    expect(blob.body).toBeInstanceOf(S3ObjectBody)
    expect(isReplayableBody(blob.body)).toBe(true)
    const result = await connection.write({ prefix: 'dst/' }, [blob], { signal })
    expect(result).toEqual({ written: 1, failed: [] })
    expect(gets).toEqual(['stream/one.bin'])
    expect(sent).toEqual([
      {
        command: 'PutObjectCommand',
        sha256: 'UNSIGNED-PAYLOAD',
        md5: md5(body).toString('base64'),
      },
    ])
    expect(await etagOf('dst/stream/one.bin')).toBe(blob.origin!.etag)
    const [back] = await readAll(connection, { prefix: 'dst/stream/one.bin' })
    expect(md5(await readBytes((back!.data as BlobData).body))).toEqual(md5(body))
  })

  /** A blob of the source object `key` that says it has `size` bytes with MD5 `listedMd5`. */
  function listedAs(key: string, size: number, listedMd5: Buffer): BlobData {
    return {
      kind: 'blob',
      key,
      body: new S3ObjectBody(recording, bucket, key, undefined, signal),
      size,
      origin: { bucket, key, etag: `"${listedMd5.toString('hex')}"`, size },
    }
  }

  // A store that ignores If-Match on GetObject hands out a version other than the listed one.
  it('fails a streamed object that turns out longer than listed, and stores nothing', async () => {
    const body = randomBytes(300_000)
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'grown.bin', Body: body }))
    const listed = body.subarray(0, 100_000)
    const result = await connection.write(
      { prefix: 'dst/' },
      [listedAs('grown.bin', listed.length, md5(listed))],
      { signal },
    )
    expect(result.written).toBe(0)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[0, 'data']])
    expect(result.failed[0]!.error.message).toContain('"grown.bin" changed after it was listed')
    expect(await exists('dst/grown.bin')).toBe(false)
  })

  it('fails a streamed object that ends before its listed size, at once, and stores nothing', async () => {
    const body = randomBytes(100_000)
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'shrunk.bin', Body: body }))
    const started = Date.now()
    const result = await connection.write(
      { prefix: 'dst/' },
      [listedAs('shrunk.bin', 250_000, md5(randomBytes(16)))],
      { signal },
    )
    // Not the request timeout (120 s): the request is aborted when the body ends short.
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[0, 'data']])
    expect(result.failed[0]!.error.message).toContain('"shrunk.bin" changed after it was listed')
    expect(await exists('dst/shrunk.bin')).toBe(false)
  })

  it('fails an object overwritten after listing with the source error, and stores nothing', async () => {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'moved/a.bin', Body: randomBytes(50_000) }),
    )
    const [item] = await readAll(connection, { prefix: 'moved/' })
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'moved/a.bin', Body: randomBytes(50_000) }),
    )
    const result = await connection.write({ prefix: 'dst/' }, [item!.data], { signal })
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[0, 'data']])
    expect(result.failed[0]!.error.message).toContain('"moved/a.bin" changed after it was listed')
    expect(await exists('dst/moved/a.bin')).toBe(false)
  })

  it('reads a streamed object again and puts it signed when its listed ETag is not its MD5', async () => {
    const body = randomBytes(200_000)
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'kms.bin', Body: body }))
    const other = md5(randomBytes(16))
    const result = await connection.write(
      { prefix: 'dst/' },
      [listedAs('kms.bin', body.length, other)],
      { signal },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    expect(gets).toEqual(['kms.bin', 'kms.bin'])
    expect(sent.map((s) => [s.sha256 === 'UNSIGNED-PAYLOAD', s.md5])).toEqual([
      [true, other.toString('base64')],
      [false, undefined],
    ])
    expect(sent[1]!.sha256).toBe(createHash('sha256').update(body).digest('hex'))
    expect(await etagOf('dst/kms.bin')).toBe(`"${md5(body).toString('hex')}"`)
  })
})
