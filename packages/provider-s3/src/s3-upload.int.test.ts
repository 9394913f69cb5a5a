// The sink's own multipart upload against the real S3 server: the bytes and ETags of objects
// around part boundaries, headers kept, part buffers reused and never changed while a request
// holds them, and no multipart upload left behind by an abort or a failed part.
import { createHash, randomBytes } from 'node:crypto'
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import type { BlobData, GuardedConnection } from '@nvisy/provider-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  createBucket,
  deleteBucket,
  randomBucketName,
  s3Input,
  s3SkipReason,
  testS3Client,
} from './__fixtures__/s3-test-server.js'
import { createS3Provider } from './s3-provider.js'
import type { S3SinkStream } from './s3-schemas.js'
import { writeS3 } from './s3-sink.js'
import { PartBufferPool } from './s3-upload.js'

const skip = await s3SkipReason()
const client = testS3Client()
const bucket = randomBucketName('upload')
const signal = new AbortController().signal
const PART = 5 * 1024 * 1024

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest()

/** The ETag S3 gives these bytes uploaded in `partSize` parts (one part: their MD5). */
function expectedEtag(bytes: Uint8Array, partSize = PART): string {
  if (bytes.byteLength <= partSize) return `"${md5(bytes).toString('hex')}"`
  const digests: Buffer[] = []
  for (let offset = 0; offset < bytes.byteLength; offset += partSize)
    digests.push(md5(bytes.subarray(offset, offset + partSize)))
  return `"${md5(Buffer.concat(digests)).toString('hex')}-${digests.length}"`
}

/** The bytes in chunks of uneven sizes, so chunk edges never line up with part edges. */
async function* chunked(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  const sizes = [1, 65_536, 7, 300_001, 196_613]
  for (let offset = 0, i = 0; offset < bytes.byteLength; i++) {
    const size = sizes[i % sizes.length]!
    yield bytes.subarray(offset, offset + size)
    offset += size
  }
}

async function stored(key: string) {
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  const hash = createHash('md5')
  let size = 0
  for await (const chunk of response.Body as AsyncIterable<Uint8Array>) {
    hash.update(chunk)
    size += chunk.byteLength
  }
  return { head, md5: hash.digest('hex'), size }
}

async function uploadsLeft(prefix: string): Promise<string[]> {
  const listing = await client.send(
    new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }),
  )
  return (listing.Uploads ?? []).map((upload) => upload.Key!)
}

async function missing(key: string): Promise<boolean> {
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => false,
    (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode === 404,
  )
}

/** One UploadPart or PutObject the sink's client sent. */
interface SentBody {
  command: string
  key: string
  partNumber: number | undefined
  bytes: number
}

/**
 * A client that records each body it is given and checks that no body changes while the SDK
 * holds it (from `send` until its promise settles, retries included): a part buffer reused
 * too early shows up here even when the stored bytes come out right. `beforeSend` may hold a
 * request back, deaf to the abort signal (as a request still resolving its credentials or
 * endpoint is); `afterSend` sees it settle; `afterSign` may change the signed request (to
 * make the store refuse it).
 */
function guardedClient() {
  const sent: SentBody[] = []
  const changed: string[] = []
  const hooks: {
    beforeSend?: (body: SentBody) => Promise<void>
    afterSend?: (body: SentBody) => void
    afterSign?: (body: SentBody, headers: Record<string, string>) => void
  } = {}
  const guarded: S3Client = testS3Client()
  const bodyOf = (
    commandName: string | undefined,
    input: { Key?: string; PartNumber?: number; Body?: unknown },
  ): SentBody | undefined =>
    input.Body instanceof Uint8Array
      ? {
          command: commandName ?? '',
          key: input.Key!,
          partNumber: input.PartNumber,
          bytes: input.Body.byteLength,
        }
      : undefined
  guarded.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; PartNumber?: number; Body?: unknown }
      const body = bodyOf(context.commandName, input)
      if (!body) return next(args)
      sent.push(body)
      const before = md5(input.Body as Uint8Array).toString('hex')
      try {
        await hooks.beforeSend?.(body)
        return await next(args)
      } finally {
        if (md5(input.Body as Uint8Array).toString('hex') !== before)
          changed.push(`${body.command} ${body.key} part ${body.partNumber ?? '-'}`)
        hooks.afterSend?.(body)
      }
    },
    { step: 'initialize', priority: 'high', name: 'guardBodies' },
  )
  guarded.middlewareStack.add(
    (next, context) => (args) => {
      const body = bodyOf(context.commandName, args.input as { Body?: unknown })
      const headers = (args.request as { headers?: Record<string, string> }).headers
      if (body && headers) hooks.afterSign?.(body, headers)
      return next(args)
    },
    { step: 'deserialize', name: 'changeSignedRequest' },
  )
  return { client: guarded, sent, changed, hooks }
}

describe.skipIf(skip)('s3 sink multipart uploads', () => {
  const guard = guardedClient()
  let connection: GuardedConnection
  beforeAll(async () => {
    await createBucket(client, bucket)
    connection = await createS3Provider({ client: guard.client }).connect(s3Input(bucket))
  })
  afterAll(async () => {
    await connection?.close()
    await deleteBucket(client, bucket).catch(() => {})
    client.destroy()
    guard.client.destroy()
  })
  beforeEach(() => {
    guard.sent.length = 0
    guard.changed.length = 0
    delete guard.hooks.beforeSend
    delete guard.hooks.afterSend
    delete guard.hooks.afterSign
  })
  afterEach(() => {
    // Whatever the test, no request's body changed while the SDK held it.
    expect(guard.changed).toEqual([])
  })

  it('stores objects around part boundaries byte for byte, with the multipart ETag of their parts and their headers, in reused part buffers', async () => {
    const sizes = [0, 1, PART - 1, PART, PART + 1, 2 * PART, 3 * PART + 7]
    const objects = sizes.flatMap((size) => {
      const bytes = randomBytes(size)
      const headers = {
        contentType: 'application/x-nvisy-test',
        metadata: { size: String(size), label: 'données ✓' },
      }
      return [
        // Streamed with its size, streamed without one, and held in memory.
        { key: `bounds/sized-${size}`, bytes, blob: { body: chunked(bytes), size, ...headers } },
        { key: `bounds/unsized-${size}`, bytes, blob: { body: chunked(bytes), ...headers } },
        { key: `bounds/bytes-${size}`, bytes, blob: { body: bytes, size, ...headers } },
        // Declared shorter and longer than they are (a body is what it turns out to be).
        { key: `bounds/under-${size}`, bytes, blob: { body: chunked(bytes), size: 1, ...headers } },
        {
          key: `bounds/over-${size}`,
          bytes,
          blob: { body: chunked(bytes), size: size + 3, ...headers },
        },
      ]
    })
    const stream: S3SinkStream = {
      prefix: '',
      createOnly: false,
      concurrency: 3,
      partSizeBytes: PART,
      partConcurrency: 2,
      serverSideCopy: false,
      copyCutoffBytes: 5 * 1024 ** 3,
    }
    const pool = new PartBufferPool()
    const result = await writeS3(
      guard.client,
      bucket,
      stream,
      objects.map(({ key, blob }): BlobData => ({ kind: 'blob', key, ...blob })),
      { signal },
      undefined,
      pool,
    )
    expect(result).toEqual({ written: objects.length, failed: [] })
    // Every buffer came back, and no more were made than 3 objects can hold at once
    // (2 parts in flight and 1 filling each), for the 40 parts and 35 objects.
    expect(pool.inUse).toBe(0)
    expect(pool.held).toBeGreaterThan(0)
    expect(pool.held).toBeLessThanOrEqual(3 * (2 + 1))

    for (const { key, bytes } of objects) {
      const object = await stored(key)
      expect({ key, size: object.size, md5: object.md5, etag: object.head.ETag }).toEqual({
        key,
        size: bytes.byteLength,
        md5: md5(bytes).toString('hex'),
        etag: expectedEtag(bytes),
      })
      expect(object.head.ContentType).toBe('application/x-nvisy-test')
      expect(object.head.Metadata?.size).toBe(String(bytes.byteLength))
    }
    // The parts: exactly PART bytes but the last, never an empty one; up to one part, one put.
    const partsOf = (key: string) =>
      guard.sent
        .filter((s) => s.key === key)
        .map((s) => (s.command === 'UploadPartCommand' ? s.bytes : `put ${s.bytes}`))
    for (const kind of ['sized', 'unsized', 'bytes', 'under', 'over']) {
      expect(partsOf(`bounds/${kind}-0`)).toEqual(['put 0'])
      expect(partsOf(`bounds/${kind}-${PART}`)).toEqual([`put ${PART}`])
      expect(partsOf(`bounds/${kind}-${PART + 1}`)).toEqual([PART, 1])
      expect(partsOf(`bounds/${kind}-${2 * PART}`)).toEqual([PART, PART])
      expect(partsOf(`bounds/${kind}-${3 * PART + 7}`)).toEqual([PART, PART, PART, 7])
    }
    expect(await uploadsLeft('bounds/')).toEqual([])
  }, 120_000)

  it('reuses its part buffers from one object to the next', async () => {
    const pool = new PartBufferPool()
    const stream: S3SinkStream = {
      prefix: 'reuse/',
      createOnly: false,
      concurrency: 1,
      partSizeBytes: PART,
      partConcurrency: 2,
      serverSideCopy: false,
      copyCutoffBytes: 5 * 1024 ** 3,
    }
    const bodies = [randomBytes(4 * PART + 1), randomBytes(3 * PART + 2)]
    const result = await writeS3(
      guard.client,
      bucket,
      stream,
      bodies.map((bytes, i): BlobData => ({ kind: 'blob', key: `${i}`, body: chunked(bytes) })),
      { signal },
      undefined,
      pool,
    )
    expect(result).toEqual({ written: 2, failed: [] })
    // 9 parts through at most 2 in flight and 1 filling.
    expect(pool.held).toBeGreaterThan(0)
    expect(pool.held).toBeLessThanOrEqual(3)
    expect(pool.inUse).toBe(0)
    for (const [i, bytes] of bodies.entries())
      expect((await stored(`reuse/${i}`)).md5).toBe(md5(bytes).toString('hex'))
  }, 60_000)

  it('an abort stops a body that ignores it and leaves no multipart upload behind', async () => {
    const controller = new AbortController()
    let partDone!: () => void
    const firstPartDone = new Promise<void>((resolve) => {
      partDone = resolve
    })
    guard.hooks.afterSend = (body) => {
      if (body.partNumber === 1) partDone()
    }
    let unblock!: () => void
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve
    })
    const bytes = randomBytes(2 * PART + 3)
    async function* stalls() {
      yield* chunked(bytes)
      // A source that never ends and does not listen to the signal.
      await blocked
    }
    const write = connection.write(
      { prefix: 'abort/', partSizeBytes: PART },
      [{ kind: 'blob', key: 'stalled.bin', body: stalls() }],
      { signal: controller.signal },
    )
    try {
      await firstPartDone
      controller.abort()
      const outcome = await write.then(
        () => 'written',
        () => 'rejected',
      )
      expect(outcome).toBe('rejected')
      // As soon as the write has settled: the upload is gone, and no object was made.
      expect(await uploadsLeft('abort/')).toEqual([])
      expect(await missing('abort/stalled.bin')).toBe(true)
      expect(guard.sent.filter((s) => s.command === 'UploadPartCommand').length).toBeGreaterThan(0)
    } finally {
      unblock()
    }
  }, 30_000)

  it('a part the store refuses fails that blob alone and aborts its upload', async () => {
    // The store checks each part against a Content-MD5 sent with it: a wrong one (added after
    // signing) makes it refuse part 2 with BadDigest, a data failure no retry would mend.
    guard.hooks.afterSign = (body, headers) => {
      if (body.key === 'refused/bad.bin' && body.partNumber === 2)
        headers['content-md5'] = md5(Buffer.from('other bytes')).toString('base64')
    }
    const good = randomBytes(PART + 10)
    const result = await connection.write(
      { prefix: 'refused/', partSizeBytes: PART, partConcurrency: 2 },
      [
        { kind: 'blob', key: 'bad.bin', body: chunked(randomBytes(4 * PART + 5)) },
        { kind: 'blob', key: 'good.bin', body: chunked(good) },
      ],
      { signal },
    )
    expect(result.written).toBe(1)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([[0, 'data']])
    expect(result.failed[0]!.error.message).toContain('refused/bad.bin')
    expect(await uploadsLeft('refused/')).toEqual([])
    expect(await missing('refused/bad.bin')).toBe(true)
    expect((await stored('refused/good.bin')).md5).toBe(md5(good).toString('hex'))
  }, 30_000)

  it('an aborted upload holds its part buffers until its requests settle: uploads running meanwhile and the next one to the same key store exactly their bytes', async () => {
    // Upload A's parts are held back for a while before they are sent, deaf to the abort, as
    // requests that have not settled yet. The pool must not hand their buffers to upload B,
    // which runs on the same connection meanwhile, nor to C, of other bytes to A's key
    // afterwards: the guard would see their bytes appear in A's requests.
    const pending = new Set<SentBody>()
    let twoPartsIn!: () => void
    const partsIn = new Promise<void>((resolve) => {
      twoPartsIn = resolve
    })
    guard.hooks.beforeSend = async (body) => {
      if (body.command !== 'UploadPartCommand' || body.key !== 'same/a.bin') return
      pending.add(body)
      if (pending.size === 2) twoPartsIn()
      await new Promise((resolve) => setTimeout(resolve, 400))
      pending.delete(body)
    }
    let unblock!: () => void
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve
    })
    const first = Buffer.alloc(2 * PART + 1, 0xaa)
    async function* stalls() {
      yield* chunked(first)
      await blocked
    }
    const stream = { prefix: 'same/', partSizeBytes: PART, partConcurrency: 2 }
    const controller = new AbortController()
    const a = connection.write(stream, [{ kind: 'blob', key: 'a.bin', body: stalls() }], {
      signal: controller.signal,
    })
    const meanwhile = randomBytes(4 * PART + 7)
    let b: Promise<unknown> | undefined
    try {
      await partsIn
      controller.abort()
      b = connection.write(stream, [{ kind: 'blob', key: 'b.bin', body: chunked(meanwhile) }], {
        signal,
      })
      expect(
        await a.then(
          () => 'written',
          () => 'rejected',
        ),
      ).toBe('rejected')
      // The write settled only after its parts' requests had.
      expect(pending.size).toBe(0)
    } finally {
      unblock()
    }
    expect(await b).toEqual({ written: 1, failed: [] })
    const next = randomBytes(3 * PART + 7)
    const result = await connection.write(
      stream,
      [{ kind: 'blob', key: 'a.bin', body: chunked(next) }],
      { signal },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    expect(guard.changed).toEqual([])
    for (const [key, bytes] of [
      ['same/b.bin', meanwhile],
      ['same/a.bin', next],
    ] as const) {
      const object = await stored(key)
      expect([key, object.md5, object.head.ETag]).toEqual([
        key,
        md5(bytes).toString('hex'),
        expectedEtag(bytes),
      ])
    }
    expect(await uploadsLeft('same/')).toEqual([])
  }, 60_000)

  it('create-only: an existing key fails a multipart blob alone, before any part is sent', async () => {
    const stream = { prefix: 'once/', createOnly: true, partSizeBytes: PART }
    const original = randomBytes(2 * PART + 1)
    expect(
      await connection.write(stream, [{ kind: 'blob', key: 'big', body: chunked(original) }], {
        signal,
      }),
    ).toEqual({ written: 1, failed: [] })
    guard.sent.length = 0
    const again = await connection.write(
      stream,
      [
        { kind: 'blob', key: 'big', body: chunked(randomBytes(2 * PART + 1)) },
        { kind: 'blob', key: 'big', body: randomBytes(2 * PART + 1) },
      ],
      { signal },
    )
    expect(again.written).toBe(0)
    expect(again.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [0, 'data'],
      [1, 'data'],
    ])
    expect(again.failed.every((f) => f.error.message.includes('already exists'))).toBe(true)
    expect(guard.sent).toEqual([])
    expect((await stored('once/big')).md5).toBe(md5(original).toString('hex'))
    expect(await uploadsLeft('once/')).toEqual([])
  }, 60_000)
})
