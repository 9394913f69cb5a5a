// Cut a service off mid-run with a TCP proxy between the runtime process and the service
// (every connection reset, new ones refused for 3 s), and slow it down: the run retries,
// resumes its reads after the last item, and completes with nothing lost or doubled.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Pipeline } from '@nvisy/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeJsonl } from './support/files.js'
import { natsAddress, natsSkipReason, TestStream } from './support/nats.js'
import {
  postgresAddress,
  postgresConnection,
  postgresSkipReason,
  TestSchema,
} from './support/postgres.js'
import { scratch, startRun, waitFor, writePipeline } from './support/runtime-process.js'
import { TcpProxy } from './support/tcp-proxy.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const pgSkip = await postgresSkipReason()
const natsSkip = await natsSkipReason()

describe.skipIf(pgSkip)('PostgreSQL cut off and slowed mid-run', () => {
  const ROWS = 40_000
  const db = new TestSchema()
  const proxy = new TcpProxy(postgresAddress)
  let work: Awaited<ReturnType<typeof scratch>>

  beforeAll(async () => {
    work = await scratch('pg-cut')
    await proxy.start()
    await db.create()
    await db.createTable('src')
    await db.createTable('dst')
    await db.seed('src', 1, ROWS)
  })

  afterAll(async () => {
    await proxy.close()
    await db.drop()
    await work?.cleanup()
  })

  it('retries through a 3 s outage and a slow link, then completes exactly', async () => {
    const via = { host: '127.0.0.1', port: proxy.port }
    const pipeline: Pipeline = {
      id: 'pg-cut',
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'postgres',
          connection: postgresConnection(db.name, via),
          stream: { table: 'src', pageSize: 500 },
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'postgres',
          connection: postgresConnection(db.name, via),
          stream: { table: 'dst' },
          batch: { maxItems: 500 },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      // Enough attempts to outlast a 3 s outage with the default backoff.
      options: { maxAttempts: 12, checkpointEveryItems: 2000 },
    }
    const file = await writePipeline(work.dir, 'pg-cut', pipeline)
    const run = startRun(file, join(work.dir, 'checkpoints.json'), { runId: 'pg-cut-1' })
    await waitFor(
      '20% of the rows in the sink',
      async () => (await db.count('dst')) >= ROWS * 0.2,
      120_000,
      50,
    )
    const droppedBefore = proxy.dropped
    await proxy.cut(3000)
    expect(proxy.dropped, 'the cut must reset live connections').toBeGreaterThan(droppedBefore)
    const afterCut = await db.count('dst')
    proxy.setDelay(40)
    await sleep(2000)
    proxy.setDelay(0)
    const { code } = await run.exited
    expect(
      run.stdout(),
      `no run summary (exit ${code}); stderr tail:\n${run.stderr().slice(-4000)}`,
    ).not.toBe('')
    const summary = JSON.parse(run.stdout())
    expect(summary.error).toBeUndefined()
    expect(code).toBe(0)
    expect(afterCut, 'the outage must land mid-run').toBeLessThan(ROWS)
    // The pool opened new connections after the outage.
    expect(proxy.accepted).toBeGreaterThan(2)
    // The retries are in the log: the read resumed after its last row, the write was redone.
    expect(run.stderr()).toMatch(/failed, retrying|resuming after the last item/)
    expect(await db.missing('src', 'dst')).toEqual([])
    expect(await db.count('dst')).toBe(ROWS)
    expect(await db.md5('dst')).toBe(await db.md5('src'))
  })
})

describe.skipIf(natsSkip)('NATS cut off and slowed mid-run', () => {
  const DOCUMENTS = 30_000
  const stream = new TestStream()
  const proxy = new TcpProxy(natsAddress)
  let work: Awaited<ReturnType<typeof scratch>>
  let root: string

  beforeAll(async () => {
    work = await scratch('nats-cut')
    root = join(work.dir, 'in')
    await mkdir(root)
    await writeJsonl(join(root, 'events.jsonl'), DOCUMENTS, (i) => ({ id: `e${i}`, n: i }))
    await proxy.start()
    await stream.create()
  })

  afterAll(async () => {
    await proxy.close()
    await stream.destroy()
    await work?.cleanup()
  })

  it('reconnects through a 3 s outage and a slow link; each message id exactly once', async () => {
    const pipeline: Pipeline = {
      id: 'nats-cut',
      nodes: [
        {
          id: 'lines',
          role: 'source',
          provider: 'fs',
          connection: { params: { root } },
          stream: { kind: 'document', file: 'events.jsonl' },
        },
        {
          id: 'stream',
          role: 'sink',
          provider: 'nats',
          connection: { params: { servers: `nats://127.0.0.1:${proxy.port}`, timeoutMs: 3000 } },
          stream: { subject: stream.subject, stream: stream.name, maxInFlight: 64 },
          batch: { maxItems: 200 },
        },
      ],
      edges: [{ from: 'lines', to: 'stream' }],
      options: { maxAttempts: 12, checkpointEveryItems: 2000 },
    }
    const file = await writePipeline(work.dir, 'nats-cut', pipeline)
    // Slow from the start so the outage lands mid-run on a fast machine too.
    proxy.setDelay(2)
    const run = startRun(file, join(work.dir, 'checkpoints.json'), { runId: 'nats-cut-1' })
    await waitFor(
      '20% of the messages in the stream',
      async () => (await stream.count()) >= DOCUMENTS * 0.2,
      120_000,
      25,
    )
    await proxy.cut(3000)
    const afterCut = await stream.count()
    proxy.setDelay(30)
    await sleep(2000)
    proxy.setDelay(0)
    const { code } = await run.exited
    const summary = JSON.parse(run.stdout() || '{}')
    expect(summary.error, run.stderr().slice(-3000)).toBeUndefined()
    expect(code).toBe(0)
    expect(afterCut, 'the outage must land mid-run').toBeLessThan(DOCUMENTS)
    // The client reconnected through the proxy after the outage.
    expect(proxy.accepted).toBeGreaterThan(1)

    const ids = await stream.ids()
    const seen = new Set(ids)
    expect(ids.length - seen.size, 'duplicated ids').toBe(0)
    const missing: string[] = []
    for (let i = 0; i < DOCUMENTS; i++) if (!seen.has(`e${i}`)) missing.push(`e${i}`)
    expect(missing.slice(0, 10)).toEqual([])
    expect(ids.length).toBe(DOCUMENTS)
  })
})
