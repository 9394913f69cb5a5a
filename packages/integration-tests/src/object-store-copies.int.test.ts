// Copies between the object stores (fs -> S3, S3 -> GCS, GCS -> S3) through the providers'
// own read and write, compared by the sha256 of every object, a 64 MiB one included.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { Storage } from '@google-cloud/storage'
import { type BlobData, batchStream, type GuardedConnection } from '@nvisy/provider-core'
import { fsProvider } from '@nvisy/provider-fs'
import { gcsProvider } from '@nvisy/provider-gcs'
import { s3Provider } from '@nvisy/provider-s3'
import { serviceSkipReason } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const s3Endpoint = process.env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480'
const s3Credentials = {
  accessKeyId: process.env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001',
  secretAccessKey:
    process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001',
}
const s3Region = process.env.NVISY_TEST_S3_REGION ?? 'us-east-1'
const gcsEndpoint = process.env.NVISY_TEST_GCS_ENDPOINT ?? 'http://127.0.0.1:9199'
const gcsProject = process.env.NVISY_TEST_GCS_PROJECT ?? 'demo-nvisy'

const probe = (url: string) => async () => {
  const response = await fetch(url, { signal: AbortSignal.timeout(3000) })
  await response.arrayBuffer()
  return true
}
const skip =
  (await serviceSkipReason('S3 server', s3Endpoint, probe(s3Endpoint))) ||
  (await serviceSkipReason('GCS emulator', gcsEndpoint, probe(gcsEndpoint)))

const suffix = randomBytes(4).toString('hex')
const s3Bucket = `nvisy-copies-${suffix}`
const gcsBucket = `nvisy-copies-${suffix}`
const signal = new AbortController().signal

const s3 = new S3Client({
  region: s3Region,
  endpoint: s3Endpoint,
  forcePathStyle: true,
  credentials: { ...s3Credentials }, // a copy: the SDK tags the object it is given ($source)
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
})
const storage = new Storage({ projectId: gcsProject, apiEndpoint: gcsEndpoint })

async function sha256(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of stream) hash.update(chunk)
  return hash.digest('hex')
}

/** The source side: file name -> sha256, with sizes from 0 bytes to 64 MiB. */
const expected = new Map<string, string>()

async function copy(
  from: GuardedConnection,
  fromStream: object,
  to: GuardedConnection,
  toStream: object,
): Promise<number> {
  let copied = 0
  const items = (async function* () {
    for await (const item of from.read(fromStream, { signal })) yield item.data
  })()
  for await (const batch of batchStream(items, { maxItems: 4, maxAgeMs: 1000 })) {
    const result = await to.write(toStream, batch, { signal })
    expect(result.failed.map((f) => f.error.message)).toEqual([])
    copied += result.written
  }
  return copied
}

async function s3Hashes(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const page = await s3.send(new ListObjectsV2Command({ Bucket: s3Bucket, Prefix: prefix }))
  for (const object of page.Contents ?? []) {
    const body = (await s3.send(new GetObjectCommand({ Bucket: s3Bucket, Key: object.Key! })))
      .Body as AsyncIterable<Uint8Array>
    out.set(object.Key!.slice(prefix.length), await sha256(body))
  }
  return out
}

async function gcsHashes(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const [files] = await storage.bucket(gcsBucket).getFiles({ prefix })
  for (const file of files)
    out.set(file.name.slice(prefix.length), await sha256(file.createReadStream()))
  return out
}

describe.skipIf(skip)('copies between object stores, compared by sha256', () => {
  let root: string
  let fsConnection: GuardedConnection
  let s3Connection: GuardedConnection
  let gcsConnection: GuardedConnection

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'nvisy-copies-'))
    const files: [string, number][] = [
      ['empty.bin', 0],
      ['small.txt', 13],
      ['dir/one.json', 4096],
      ['dir/nested/two.bin', 1024 * 1024 + 7],
      ['naïve name with spaces.dat', 300_000],
      ['large/object-64MiB.bin', 64 * 1024 * 1024],
    ]
    for (const [name, size] of files) {
      const path = join(root, name)
      await mkdir(dirname(path), { recursive: true })
      // Random bytes written in 1 MiB slices, so even the large file is never built whole.
      const hash = createHash('sha256')
      await writeFile(path, '')
      for (let written = 0; written < size; written += 1 << 20) {
        const slice = randomBytes(Math.min(1 << 20, size - written))
        hash.update(slice)
        await writeFile(path, slice, { flag: 'a' })
      }
      expected.set(name, hash.digest('hex'))
    }
    await s3.send(new CreateBucketCommand({ Bucket: s3Bucket }))
    await storage.createBucket(gcsBucket)
    fsConnection = await fsProvider.connect({ credentials: {}, params: { root } })
    s3Connection = await s3Provider.connect({
      credentials: s3Credentials,
      params: { bucket: s3Bucket, region: s3Region, endpoint: s3Endpoint },
    })
    gcsConnection = await gcsProvider.connect({
      credentials: {},
      params: { bucket: gcsBucket, projectId: gcsProject, apiEndpoint: gcsEndpoint },
    })
  }, 120_000)

  afterAll(async () => {
    await Promise.allSettled([fsConnection?.close(), s3Connection?.close(), gcsConnection?.close()])
    const page = await s3
      .send(new ListObjectsV2Command({ Bucket: s3Bucket }))
      .catch(() => undefined)
    const keys = (page?.Contents ?? []).map((o) => ({ Key: o.Key! }))
    if (keys.length)
      await s3
        .send(new DeleteObjectsCommand({ Bucket: s3Bucket, Delete: { Objects: keys } }))
        .catch(() => {})
    await s3.send(new DeleteBucketCommand({ Bucket: s3Bucket })).catch(() => {})
    await storage
      .bucket(gcsBucket)
      .deleteFiles({ force: true })
      .catch(() => {})
    await storage
      .bucket(gcsBucket)
      .delete()
      .catch(() => {})
    s3.destroy()
    if (root) await rm(root, { recursive: true, force: true })
  })

  it('the fixture files hash as expected on disk', async () => {
    expect(await sha256(createReadStream(join(root, 'small.txt')))).toBe(expected.get('small.txt'))
  })

  it('fs -> S3 copies every file byte for byte', async () => {
    expect(await copy(fsConnection, { kind: 'blob' }, s3Connection, { prefix: 'from-fs/' })).toBe(
      expected.size,
    )
    expect(await s3Hashes('from-fs/')).toEqual(expected)
  }, 180_000)

  it('S3 -> GCS copies every object byte for byte, with content type and metadata', async () => {
    await s3Connection.write(
      { prefix: 'meta/' },
      [
        {
          kind: 'blob',
          key: 'tagged.json',
          body: Buffer.from('{"x":1}'),
          contentType: 'application/json',
          metadata: { team: 'données' },
        },
      ],
      { signal },
    )
    expect(
      await copy(s3Connection, { prefix: 'from-fs/' }, gcsConnection, { prefix: 'from-s3/' }),
    ).toBe(expected.size)
    // A blob keeps its full source key; the sink prefix is put in front of it.
    expect(await gcsHashes('from-s3/from-fs/')).toEqual(expected)
    await copy(s3Connection, { prefix: 'meta/' }, gcsConnection, { prefix: '' })
    const [metadata] = await storage.bucket(gcsBucket).file('meta/tagged.json').getMetadata()
    expect(metadata.contentType).toBe('application/json')
    expect(metadata.metadata).toEqual({ team: 'données' })
  }, 180_000)

  it('GCS -> S3 copies every object byte for byte', async () => {
    expect(
      await copy(gcsConnection, { prefix: 'from-s3/' }, s3Connection, { prefix: 'from-gcs/' }),
    ).toBe(expected.size)
    expect(await s3Hashes('from-gcs/from-s3/from-fs/')).toEqual(expected)
  }, 180_000)

  it('a copy interrupted after some objects resumes from the last context with nothing lost or repeated', async () => {
    const seen: string[] = []
    let last: unknown
    for await (const item of s3Connection.read({ prefix: 'from-fs/' }, { signal })) {
      seen.push((item.data as BlobData).key)
      last = item.context
      if (seen.length === 2) break
    }
    for await (const item of s3Connection.read(
      { prefix: 'from-fs/' },
      { signal, after: JSON.parse(JSON.stringify(last)) },
    )) {
      seen.push((item.data as BlobData).key)
    }
    expect(seen).toEqual([...expected.keys()].map((k) => `from-fs/${k}`).sort())
  })
})
