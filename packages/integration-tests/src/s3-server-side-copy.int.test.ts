// S3 -> S3 pipelines through `nvisy run` (the built CLI) on the real S3 server, with a
// byte-counting proxy in front of it: on one endpoint with the same credentials the objects
// are copied inside the server (no body byte through the runtime; UploadPartCopy above the
// cutoff); with other credentials or another endpoint they stream; a copy the server refuses
// streams; a run killed midway resumes and copies each committed object once. Every copy is
// compared with its source by sha256.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { serviceSkipReason } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../../vitest.shared.js'
import { CLI, type RunSummary, scratchDir } from './support/cli.js'
import { CountingProxy } from './support/counting-proxy.js'

const CONFIG = join(repoRoot, 'packages/integration-tests/fixtures/s3.config.json')
const endpoint = process.env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480'
const accessKeyId = process.env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001'
const secretAccessKey =
  process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001'
const region = process.env.NVISY_TEST_S3_REGION ?? 'us-east-1'
const MiB = 1024 * 1024

const skip = await serviceSkipReason('S3 server', endpoint, async () => {
  const response = await fetch(endpoint, { signal: AbortSignal.timeout(3000) })
  await response.arrayBuffer()
  return true
})

const suffix = randomBytes(4).toString('hex')
const source = `nvisy-ssc-src-${suffix}`
const sink = `nvisy-ssc-dst-${suffix}`
const refusing = `nvisy-ssc-deny-${suffix}`
const s3 = new S3Client({
  region,
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
})

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

async function list(bucket: string, prefix: string) {
  const out = new Map<string, { size: number; etag: string; lastModified: number }>()
  let token: string | undefined
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    )
    for (const o of page.Contents ?? [])
      out.set(o.Key!.slice(prefix.length), {
        size: o.Size!,
        etag: o.ETag!,
        lastModified: o.LastModified!.getTime(),
      })
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return out
}

async function hashes(bucket: string, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const key of (await list(bucket, prefix)).keys()) {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + key }))
    const hash = createHash('sha256')
    for await (const chunk of response.Body as AsyncIterable<Uint8Array>) hash.update(chunk)
    out[key] = hash.digest('hex')
  }
  return out
}

async function destroy(bucket: string) {
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined)
    const keys = (page?.Contents ?? []).map((o) => ({ Key: o.Key! }))
    if (keys.length === 0) break
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }))
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {})
}

interface Side {
  bucket: string
  endpoint: string
  /** Credentials as the pipeline file holds them (default: the test keys). */
  credentials?: Record<string, unknown>
}

const connection = (side: Side) => ({
  params: { bucket: side.bucket, region, endpoint: side.endpoint },
  credentials: side.credentials ?? { accessKeyId, secretAccessKey },
})

function pipeline(
  id: string,
  from: Side & { prefix: string },
  to: Side & { stream?: Record<string, unknown>; batch?: Record<string, unknown> },
  options: Record<string, unknown> = {},
) {
  return {
    id,
    nodes: [
      {
        id: 'objects',
        role: 'source',
        provider: 's3',
        connection: connection(from),
        stream: { prefix: from.prefix },
      },
      {
        id: 'copies',
        role: 'sink',
        provider: 's3',
        connection: connection(to),
        stream: to.stream ?? {},
        ...(to.batch ? { batch: to.batch } : {}),
      },
    ],
    edges: [{ from: 'objects', to: 'copies' }],
    options,
  }
}

interface Started {
  child: ChildProcess
  stderr: () => string
  done: Promise<{ code: number | null; summary: RunSummary | undefined; stderr: string }>
}

/** `nvisy run` on a pipeline file in `dir`, resuming from its checkpoint file. */
async function start(dir: string, spec: { id: string }, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `${spec.id}.json`)
  await writeFile(file, JSON.stringify(spec, null, 2))
  const child = spawn(
    process.execPath,
    [
      CLI,
      'run',
      file,
      '--config',
      CONFIG,
      '--checkpoints',
      join(dir, `${spec.id}.checkpoints.json`),
      '--log-level',
      'info',
    ],
    { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-400_000)
  })
  const done = new Promise<{
    code: number | null
    summary: RunSummary | undefined
    stderr: string
  }>((resolve) =>
    child.once('exit', (code) => {
      let summary: RunSummary | undefined
      try {
        summary = JSON.parse(stdout) as RunSummary
      } catch {
        summary = undefined
      }
      resolve({ code, summary, stderr })
    }),
  )
  return { child, stderr: () => stderr, done } satisfies Started
}

const run = async (dir: string, spec: { id: string }, env?: NodeJS.ProcessEnv) =>
  (await start(dir, spec, env)).done

/** JSON log lines (pino) whose message matches. */
const logLines = (stderr: string, pattern: RegExp) =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => pattern.test(line.msg))

describe.skipIf(skip)('S3 -> S3 on one server through nvisy run', () => {
  const expected: Record<string, string> = {}
  let dataBytes = 0
  let proxy: CountingProxy
  let work: Awaited<ReturnType<typeof scratchDir>>

  beforeAll(async () => {
    work = await scratchDir('s3-copy')
    proxy = await new CountingProxy(endpoint).start()
    for (const bucket of [source, sink, refusing])
      await s3.send(new CreateBucketCommand({ Bucket: bucket }))
    const put = async (key: string, body: Uint8Array, extra: object = {}) => {
      await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body, ...extra }))
      expected[key] = sha256(body)
      dataBytes += body.byteLength
    }
    await put('set/tagged.json', Buffer.from('{"copied":"server-side"}'), {
      ContentType: 'application/json',
      Metadata: { team: '=?UTF-8?B?ZG9ubsOpZXM=?=' },
    })
    await put('set/empty.bin', new Uint8Array(0))
    await put('set/odd name + ü %.bin', new Uint8Array(randomBytes(70_000)))
    for (let i = 0; i < 10; i++)
      await put(`set/objects/${i}.bin`, new Uint8Array(randomBytes(200_000 + i * 90_001)))
    // Above the sink's copy cutoff below (8 MiB): copied in five 5 MiB parts.
    await put('set/large/object.bin', new Uint8Array(randomBytes(23 * MiB)))
    // The refusing bucket denies every copy into it (plain uploads are allowed).
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: refusing,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Deny',
              Principal: '*',
              Action: 's3:PutObject',
              Resource: `arn:aws:s3:::${refusing}/*`,
              Condition: { StringLike: { 's3:x-amz-copy-source': '*' } },
            },
          ],
        }),
      }),
    )
  }, 180_000)

  afterAll(async () => {
    await proxy?.close()
    for (const bucket of [source, sink, refusing]) await destroy(bucket).catch(() => {})
    s3.destroy()
    await work?.cleanup()
  })

  const sinkStream = { copyCutoffBytes: 8 * MiB, partSizeBytes: 5 * MiB }

  it('same endpoint, same credentials: copied inside the server, no body through the runtime, identical', async () => {
    proxy.reset()
    const spec = pipeline(
      'same-place',
      { bucket: source, endpoint: proxy.url, prefix: 'set/' },
      {
        bucket: sink,
        endpoint: proxy.url,
        // The same secret by another route: what is compared is the resolved credentials.
        credentials: { accessKeyId, secretAccessKey: { $env: 'NVISY_TEST_SSC_SECRET' } },
        stream: { prefix: 'same/', ...sinkStream },
      },
    )
    const result = await run(work.dir, spec, { NVISY_TEST_SSC_SECRET: secretAccessKey })
    expect(result.summary?.status, result.stderr.slice(-3000)).toBe('completed')
    expect(result.summary!.stats.nodes.copies!.items).toBe(Object.keys(expected).length)
    expect(await hashes(sink, 'same/')).toEqual(expected)
    // Listings, HEADs and copy requests only: a few KiB per object, not the 25 MiB of bodies.
    expect(dataBytes).toBeGreaterThan(25 * MiB)
    expect(proxy.total).toBeLessThan(512 * 1024)
    expect(logLines(result.stderr, /copying objects server-side/)).toHaveLength(1)
    expect(logLines(result.stderr, /server-side copy refused/)).toEqual([])
    // The large object went in parts (its source is one part), content type and metadata kept.
    const large = await s3.send(
      new HeadObjectCommand({ Bucket: sink, Key: 'same/set/large/object.bin' }),
    )
    expect(large.ETag).toMatch(/-5"$/)
    const tagged = await s3.send(
      new HeadObjectCommand({ Bucket: sink, Key: 'same/set/tagged.json' }),
    )
    expect(tagged.ContentType).toBe('application/json')
    expect(tagged.Metadata).toEqual({ team: '=?UTF-8?B?ZG9ubsOpZXM=?=' })
    expect(result.stderr).not.toContain(secretAccessKey)
  }, 180_000)

  it('other credentials (the default chain on one side) or another endpoint: every byte streams, identical', async () => {
    const cases = [
      {
        name: 'credentials',
        from: { bucket: source, endpoint: proxy.url, prefix: 'set/', credentials: {} },
        to: { bucket: sink, endpoint: proxy.url },
        env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey },
        // Downloads and uploads both pass the proxy.
        least: 2 * dataBytes,
      },
      {
        name: 'endpoint',
        from: { bucket: source, endpoint: proxy.url, prefix: 'set/' },
        to: { bucket: sink, endpoint },
        env: {},
        // Downloads pass the proxy; uploads go to the server directly.
        least: dataBytes,
      },
    ]
    for (const c of cases) {
      proxy.reset()
      const spec = pipeline(`other-${c.name}`, c.from, {
        ...c.to,
        stream: { prefix: `other-${c.name}/`, ...sinkStream },
      })
      const result = await run(work.dir, spec, c.env)
      expect(result.summary?.status, `${c.name}: ${result.stderr.slice(-3000)}`).toBe('completed')
      expect(await hashes(sink, `other-${c.name}/`), c.name).toEqual(expected)
      expect(proxy.total, c.name).toBeGreaterThan(c.least)
      expect(logLines(result.stderr, /server-side/), c.name).toEqual([])
    }
  }, 240_000)

  it('a copy the server refuses (AccessDenied by bucket policy) streams instead: identical, logged once at info', async () => {
    proxy.reset()
    const spec = pipeline(
      'refused',
      { bucket: source, endpoint: proxy.url, prefix: 'set/objects/' },
      { bucket: refusing, endpoint: proxy.url, stream: { prefix: 'refused/' } },
    )
    const result = await run(work.dir, spec)
    expect(result.summary?.status, result.stderr.slice(-3000)).toBe('completed')
    // A blob keeps its full source key; the sink prefix goes in front of it.
    const objects = Object.fromEntries(
      Object.entries(expected).filter(([k]) => k.startsWith('set/objects/')),
    )
    expect(await hashes(refusing, 'refused/')).toEqual(objects)
    const bytes = Object.keys(objects).length * 200_000
    expect(proxy.total).toBeGreaterThan(2 * bytes)
    expect(logLines(result.stderr, /copying objects server-side/)).toHaveLength(1)
    const refusals = logLines(result.stderr, /server-side copy refused/)
    expect(refusals.map((l) => l.level)).toEqual([30]) // once, at info; the rest at debug
    expect(refusals[0]!.msg).toContain('AccessDenied')
  }, 180_000)

  it('SIGKILL midway, then resume: each committed object is copied once, all arrive identical', async () => {
    const count = 120
    const many: Record<string, string> = {}
    for (let i = 0; i < count; i += 20)
      await Promise.all(
        Array.from({ length: 20 }, async (_, j) => {
          const key = `many/${String(i + j).padStart(4, '0')}.bin`
          const body = new Uint8Array(randomBytes(1 + (((i + j) * 7919) % 40_000)))
          await s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }))
          many[key] = sha256(body)
        }),
      )
    const spec = pipeline(
      'resumed',
      { bucket: source, endpoint: proxy.url, prefix: 'many/' },
      {
        bucket: sink,
        endpoint: proxy.url,
        stream: { prefix: 'resumed/' },
        batch: { maxItems: 2 },
      },
      { checkpointEveryItems: 4, checkpointEverySeconds: 0.5 },
    )
    // Slow enough to stop midway: every chunk through the proxy waits a little.
    proxy.setDelay(15)
    proxy.reset()
    let first: Started | undefined
    try {
      first = await start(work.dir, spec)
      const deadline = Date.now() + 120_000
      while ((await list(sink, 'resumed/')).size < count / 4) {
        if (Date.now() > deadline) throw new Error('the first run copied too little in 120 s')
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      first.child.kill('SIGKILL')
      await first.done
    } finally {
      proxy.setDelay(0)
      if (first && first.child.exitCode === null) first.child.kill('SIGKILL')
    }
    const atKill = await list(sink, 'resumed/')
    expect(atKill.size, 'the kill must land midway').toBeLessThan(count)
    const saved = JSON.parse(await readFile(join(work.dir, 'resumed.checkpoints.json'), 'utf8'))[
      'resumed.objects'
    ]
    const checkpoint: string = saved.context.key
    const committed = Object.keys(many).filter((k) => k <= checkpoint)
    expect(committed.length).toBeGreaterThan(0)
    for (const key of committed) expect(atKill.has(key), `${key} <= checkpoint`).toBe(true)

    proxy.reset()
    const second = await run(work.dir, spec)
    expect(second.summary?.status, second.stderr.slice(-3000)).toBe('completed')
    // The resumed read starts after the checkpoint: only the objects after it are read again.
    expect(second.summary!.stats.nodes.objects!.items).toBe(count - committed.length)
    expect(await hashes(sink, 'resumed/')).toEqual(many)
    // Committed objects were not copied again: the server's last-modified did not move.
    const after = await list(sink, 'resumed/')
    for (const key of committed)
      expect(after.get(key)!.lastModified, key).toBe(atKill.get(key)!.lastModified)
    // Still no bodies through the runtime (requests for at most 120 objects).
    expect(proxy.total).toBeLessThan(count * 4096)
  }, 300_000)
})
