// A bucket of 2,000 objects copied to another bucket by three `nvisy serve` processes in 8
// partitions (key ranges over the listing), one instance killed (SIGKILL) mid-partition: its
// work item is redelivered and resumed from the partition's checkpoint on a survivor. The
// destination holds exactly the source: every key, with the ETag (the MD5 the S3 server
// computed) and size of the source object.
import { randomBytes } from 'node:crypto'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { createCurve } from '@nats-io/nkeys'
import type { Pipeline } from '@nvisy/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildRuntimeDist,
  natsSkip,
  S3,
  ServerClient,
  s3Skip,
  terminal,
  uniqueNaming,
} from './__fixtures__/harness.js'
import { killAll, killMidPartition, type Serve, serveInstance } from './__fixtures__/serve-group.js'

const skip = (await natsSkip()) || (await s3Skip())
const OBJECTS = 2000
const PARTITIONS = 8
const suffix = randomBytes(4).toString('hex')
const from = `nvisy-parts-src-${suffix}`
const to = `nvisy-parts-dst-${suffix}`
const naming = uniqueNaming('parts3')
const decoder = new TextDecoder()

/** Every key of a bucket with the server's ETag and size, in listing order. */
async function listing(s3: S3Client, bucket: string): Promise<string[]> {
  const out: string[] = []
  let token: string | undefined
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    )
    for (const object of page.Contents ?? [])
      out.push(`${object.Key} ${object.ETag} ${object.Size}`)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return out
}

async function emptyAndDelete(s3: S3Client, bucket: string): Promise<void> {
  let token: string | undefined
  do {
    const page = await s3
      .send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
      .catch(() => undefined)
    if (!page) return
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }))
    if (keys.length > 0)
      await s3.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
      )
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {})
}

describe.skipIf(skip)('a partitioned S3 copy across three nvisy serve processes', () => {
  let s3: S3Client
  let server: ServerClient
  const running: Serve[] = []
  const runtimeSeed = decoder.decode(createCurve().getSeed())
  const s3Credentials = { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey }

  function copy(id: string): Pipeline {
    const node = (nodeId: string, role: 'source' | 'sink', bucket: string, stream: object) => ({
      id: nodeId,
      role,
      provider: 's3',
      connection: {
        params: { bucket, endpoint: S3.endpoint, region: S3.region, forcePathStyle: true },
        sealedCredentials: server.seal(s3Credentials),
      },
      stream: stream as Record<string, unknown>,
    })
    return {
      id,
      nodes: [
        node('src', 'source', from, { prefix: '' }),
        { ...node('dst', 'sink', to, { concurrency: 4 }), batch: { maxItems: 10 } },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 10, checkpointEverySeconds: 0.2 },
    }
  }

  beforeAll(async () => {
    await buildRuntimeDist()
    s3 = new S3Client({
      region: S3.region,
      endpoint: S3.endpoint,
      forcePathStyle: true,
      credentials: { ...s3Credentials },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
    await s3.send(new CreateBucketCommand({ Bucket: from }))
    await s3.send(new CreateBucketCommand({ Bucket: to }))
    // Keys of uneven density (three prefixes of different sizes, multi-byte names among them)
    // and bodies of different sizes.
    const keys = Array.from({ length: OBJECTS }, (_, i) =>
      i < 1200
        ? `a/${String(i).padStart(5, '0')}.bin`
        : i < 1900
          ? `b/ü-${String(i).padStart(5, '0')}.bin`
          : `z/${String(i).padStart(5, '0')}-${'x'.repeat(i % 17)}.bin`,
    )
    for (let i = 0; i < keys.length; i += 32)
      await Promise.all(
        keys.slice(i, i + 32).map((key, j) =>
          s3.send(
            new PutObjectCommand({
              Bucket: from,
              Key: key,
              Body: randomBytes(64 + ((i + j) % 50) * 97),
            }),
          ),
        ),
      )
    server = await ServerClient.connect(naming)
  }, 600_000)

  afterAll(async () => {
    killAll(running)
    await server?.cleanup()
    if (s3) {
      await emptyAndDelete(s3, from)
      await emptyAndDelete(s3, to)
      s3.destroy()
    }
  })

  it('copies 2,000 objects in 8 partitions, survives a SIGKILL mid-partition, and every object arrives once with its bytes', async () => {
    const instances = [0, 1, 2].map(() => {
      const run = serveInstance({
        naming,
        serverPublicKey: server.publicKey,
        runtimeSeed,
        config: 'nvisy.s3.config.json',
        extraArgs: ['--partition-ack-wait', '4', '--partition-concurrency', '2'],
      })
      running.push(run)
      return run
    })
    const ids = await Promise.all(instances.map((run) => run.ready()))
    await server.catalog()

    const runId = `parts3-${suffix}`
    const reply = (await server.startRun(runId, copy(`parts3-${suffix}`), {
      partitions: PARTITIONS,
    })) as any
    expect(reply.plan).toMatchObject({ count: PARTITIONS, pending: PARTITIONS })

    const victim = await killMidPartition(server, runId, instances, ids, 3)

    const events = await server.runEvents(runId, { partitioned: true, timeoutMs: 300_000 })
    expect(terminal(events), JSON.stringify(terminal(events))).toMatchObject({ type: 'completed' })
    const ended = events.filter((e) => e.type === 'partition_ended') as any[]
    expect(ended.map((e) => e.partition.index).sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7,
    ])
    const killedPartition = ended.find((e) => e.partition.index === victim.index)
    expect(killedPartition.instanceId).not.toBe(victim.instanceId)

    // Every key once, with the source's bytes (ETag: the MD5 the S3 server computed) and size.
    const [source, target] = await Promise.all([listing(s3, from), listing(s3, to)])
    expect(source).toHaveLength(OBJECTS)
    expect(target).toEqual(source)
  }, 600_000)
})
