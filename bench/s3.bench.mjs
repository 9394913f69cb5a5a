#!/usr/bin/env node
// S3 -> S3 copy through the providers (s3 source -> batches -> s3 sink) next to a bare SDK
// pipe (GetObject stream into lib-storage Upload) at the same concurrency and part settings,
// in the same run, on a dedicated local Ceph RADOS Gateway started for the benchmark.
//
//   pnpm build && node bench/s3.bench.mjs [--objects-mib 1024] [--large-mib 2048] [--concurrency 4]
//
// Prints one JSON object: MB/s and peak RSS per side, and ratio = providers / bare.
import { execFileSync, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    'objects-mib': { type: 'string', default: '1024' },
    'large-mib': { type: 'string', default: '2048' },
    concurrency: { type: 'string', default: '4' },
    'part-concurrency': { type: 'string', default: '4' },
    child: { type: 'string' },
  },
})
const MiB = 1024 * 1024
const objectsMiB = Number(args['objects-mib'])
const largeMiB = Number(args['large-mib'])
const concurrency = Number(args.concurrency)
const partConcurrency = Number(args['part-concurrency'])
const partSize = 8 * MiB
const objectCount = Math.floor(objectsMiB / 8)
const totalBytes = objectCount * 8 * MiB + largeMiB * MiB

const serverEnv = {
  ...process.env,
  S3_SERVER_PORT: '7490',
  S3_SERVER_MON_PORT: '3310',
  S3_SERVER_DIR: '/tmp/nvisy-bench-s3',
  // Source, the copy being written, and the previous copy not yet reclaimed by the gateway.
  S3_SERVER_MEM_BYTES: String((3 * (objectsMiB + largeMiB) + 1024) * MiB),
}
const endpoint = 'http://127.0.0.1:7490'
const credentials = {
  accessKeyId: 'AKIALOCALS3TEST00001',
  secretAccessKey: 'localS3testSecretKey0000000000000000001',
}
const packageRequire = createRequire(join(here, '../packages/provider-s3/package.json'))
const {
  S3Client,
  PutObjectCommand,
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  DeleteObjectsCommand,
  HeadObjectCommand,
} = packageRequire('@aws-sdk/client-s3')
const { Upload } = packageRequire('@aws-sdk/lib-storage')
const { Readable } = await import('node:stream')

function client() {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { ...credentials },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

async function listAll(s3, bucket) {
  const out = []
  let token
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    )
    for (const o of page.Contents ?? []) out.push(o)
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return out
}

// ---- child side: one copy, measured in its own process so peak RSS is its own ----
if (args.child) {
  const s3 = client()
  let peak = 0
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  const started = process.hrtime.bigint()
  if (args.child === 'bare') {
    const objects = await listAll(s3, 'bench-src')
    let next = 0
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < objects.length) {
          const object = objects[next++]
          const response = await s3.send(
            new GetObjectCommand({ Bucket: 'bench-src', Key: object.Key }),
          )
          await new Upload({
            client: s3,
            params: {
              Bucket: 'bench-dst',
              Key: object.Key,
              Body: response.Body,
              ContentType: response.ContentType,
              Metadata: response.Metadata,
            },
            partSize,
            queueSize: partConcurrency,
          }).done()
        }
      }),
    )
  } else {
    const { s3Provider } = await import('../packages/provider-s3/dist/index.js')
    const { batchStream } = await import('../packages/provider-core/dist/index.js')
    const input = (bucket) => ({ credentials, params: { bucket, endpoint } })
    const source = await s3Provider.connect(input('bench-src'))
    const sink = await s3Provider.connect(input('bench-dst'))
    const signal = new AbortController().signal
    const items = (async function* () {
      for await (const item of source.read({}, { signal })) yield item.data
    })()
    for await (const batch of batchStream(items, { maxItems: concurrency, maxAgeMs: 1000 })) {
      const result = await sink.write(
        { concurrency, partConcurrency, partSizeBytes: partSize },
        batch,
        { signal },
      )
      if (result.failed.length) throw new Error(`copy failed: ${result.failed[0].error.message}`)
    }
    await source.close()
    await sink.close()
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearInterval(sample)
  peak = Math.max(peak, process.memoryUsage().rss)
  process.stdout.write(JSON.stringify({ seconds, peakRssBytes: peak }))
  process.exit(0)
}

// ---- parent: server, data, both sides, verification ----
function side(name) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', name, ...process.argv.slice(2)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    child.stdout.on('data', (c) => {
      out += c
    })
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${name} side exited ${code}`)),
    )
  })
}

const serverScript = join(here, '../scripts/services/s3-server.sh')
execFileSync('bash', [serverScript, 'start'], {
  env: serverEnv,
  stdio: ['ignore', 'ignore', 'inherit'],
})
try {
  const s3 = client()
  await s3.send(new CreateBucketCommand({ Bucket: 'bench-src' }))
  await s3.send(new CreateBucketCommand({ Bucket: 'bench-dst' }))
  const block = Buffer.alloc(8 * MiB)
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i)
  for (let i = 0; i < objectCount; i++) {
    block.writeUInt32LE(i, 0) // each object differs
    await s3.send(
      new PutObjectCommand({
        Bucket: 'bench-src',
        Key: `objects/${String(i).padStart(5, '0')}.bin`,
        Body: block,
      }),
    )
  }
  if (largeMiB > 0) {
    async function* large() {
      for (let i = 0; i < largeMiB / 8; i++) yield block
    }
    await new Upload({
      client: s3,
      params: { Bucket: 'bench-src', Key: 'large.bin', Body: Readable.from(large()) },
      partSize,
    }).done()
  }
  const source = await listAll(s3, 'bench-src')

  async function emptyDestination() {
    const objects = await listAll(s3, 'bench-dst')
    for (let i = 0; i < objects.length; i += 1000) {
      await s3.send(
        new DeleteObjectsCommand({
          Bucket: 'bench-dst',
          Delete: { Objects: objects.slice(i, i + 1000).map((o) => ({ Key: o.Key })) },
        }),
      )
    }
  }
  async function verify() {
    const copied = await listAll(s3, 'bench-dst')
    if (copied.length !== source.length)
      throw new Error(`copied ${copied.length} of ${source.length} objects`)
    for (const [i, object] of copied.entries()) {
      if (object.Key !== source[i].Key || object.Size !== source[i].Size)
        throw new Error(`object ${object.Key} differs`)
    }
    // Single-part objects have an md5 ETag on both sides: compare them.
    for (const object of copied.filter((o) => !o.ETag.includes('-'))) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'bench-src', Key: object.Key }))
      if (head.ETag !== object.ETag)
        throw new Error(`object ${object.Key}: ETag ${object.ETag} != ${head.ETag}`)
    }
  }

  const measured = {}
  for (const name of ['bare', 'providers']) {
    await emptyDestination()
    const result = await side(name)
    await verify()
    measured[name] = {
      seconds: Number(result.seconds.toFixed(2)),
      mbPerSecond: Number((totalBytes / 1e6 / result.seconds).toFixed(1)),
      peakRssMB: Math.round(result.peakRssBytes / MiB),
    }
    console.error(`${name}: ${JSON.stringify(measured[name])}`)
  }
  await emptyDestination()
  s3.destroy()
  const report = {
    benchmark: 's3-to-s3 copy (local Ceph RGW, memstore)',
    data: { objects: objectCount, objectMiB: 8, largeMiB, totalMiB: Math.round(totalBytes / MiB) },
    settings: { concurrency, partConcurrency, partSizeMiB: 8 },
    bare: measured.bare,
    providers: measured.providers,
    ratio: Number((measured.providers.mbPerSecond / measured.bare.mbPerSecond).toFixed(3)),
    target: { ratio: 0.8, peakRssMB: 256 },
  }
  console.log(JSON.stringify(report, null, 2))
} finally {
  execFileSync('bash', [serverScript, 'stop'], {
    env: serverEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}
