// Load: 20 runs at once on one runtime instance (a dispatcher with its own subjects), half
// fs -> fs blob copies, half PostgreSQL -> JSONL documents with sealed credentials; every
// run completes and every output is exact.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { createCurve } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import { createSubjects, type Pipeline, type RunEvent } from '@nvisy/protocol'
import { fsProvider } from '@nvisy/provider-fs'
import { postgresProvider } from '@nvisy/provider-postgres'
import {
  type Dispatcher,
  type DispatcherNaming,
  executePipeline,
  MapProviderRegistry,
  sealCredentials,
  startDispatcher,
} from '@nvisy/runtime'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NATS_URL, natsConnect, natsSkipReason } from './support/nats.js'
import { postgresConnection, postgresSkipReason, TestSchema } from './support/postgres.js'
import { scratch } from './support/runtime-process.js'

const RUNS = 20
const FILES = 30
const ROWS = 3000
const skip = (await natsSkipReason()) || (await postgresSkipReason())
const decoder = new TextDecoder()
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

describe.skipIf(skip)('20 concurrent runs on one runtime instance', () => {
  const suffix = randomBytes(4).toString('hex')
  const naming: DispatcherNaming = {
    prefix: `nvisyload.${suffix}.v1`,
    eventsStream: `NVISY_LOAD_EVENTS_${suffix}`,
    checkpointBucket: `nvisy-load-checkpoints-${suffix}`,
    queueGroup: `nvisy-load-${suffix}`,
  }
  const subjects = createSubjects(naming.prefix)
  const serverKey = createCurve()
  const db = new TestSchema()
  const expectedFiles = new Map<string, string>()
  let dispatcher: Dispatcher
  let client: NatsConnection
  let work: Awaited<ReturnType<typeof scratch>>

  beforeAll(async () => {
    work = await scratch('load')
    await mkdir(join(work.dir, 'in'), { recursive: true })
    for (let i = 0; i < FILES; i++) {
      const body = new Uint8Array(randomBytes(1 + ((i * 15_485_863) % 200_000)))
      const key = `f/${String(i).padStart(3, '0')}.bin`
      await mkdir(join(work.dir, 'in/f'), { recursive: true })
      await writeFile(join(work.dir, 'in', key), body)
      expectedFiles.set(key, sha256(body))
    }
    await db.create()
    for (let r = 0; r < RUNS / 2; r++) {
      await db.createTable(`t${r}`)
      await db.seed(`t${r}`, r * 10_000 + 1, r * 10_000 + ROWS)
    }
    dispatcher = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([fsProvider, postgresProvider]),
      execute: executePipeline,
      serverPublicKey: serverKey.getPublicKey(),
      naming,
      instanceId: `load-${suffix}`,
      localPathRoots: [work.dir], // fs roots must be allowed (nvisy serve --fs-root)
      executeOptions: { progressIntervalMs: 500 },
    })
    client = await natsConnect()
  })

  afterAll(async () => {
    await dispatcher?.close()
    if (client) {
      const jsm = await jetstreamManager(client)
      await jsm.streams.delete(naming.eventsStream).catch(() => {})
      await jsm.streams.delete(`KV_${naming.checkpointBucket}`).catch(() => {})
      await client.close()
    }
    await db.drop()
    await work?.cleanup()
  })

  async function terminalEvent(runId: string): Promise<RunEvent> {
    const consumer = await jetstream(client).consumers.get(naming.eventsStream, {
      filter_subjects: subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    const timer = setTimeout(() => messages.stop(), 150_000)
    try {
      for await (const message of messages) {
        const event = message.json<RunEvent>()
        if (['completed', 'failed', 'cancelled'].includes(event.type)) return event
      }
    } finally {
      clearTimeout(timer)
      messages.stop()
    }
    throw new Error(`run ${runId} did not end`)
  }

  function pipelineFor(index: number): Pipeline {
    if (index % 2 === 0) {
      return {
        id: `load-fs-${index}`,
        nodes: [
          {
            id: 'in',
            role: 'source',
            provider: 'fs',
            connection: { params: { root: join(work.dir, 'in') } },
            stream: { kind: 'blob', prefix: 'f/' },
          },
          {
            id: 'out',
            role: 'sink',
            provider: 'fs',
            connection: { params: { root: join(work.dir, 'out') } },
            stream: { kind: 'blob', prefix: `run-${index}/` },
            batch: { maxItems: 4 },
          },
        ],
        edges: [{ from: 'in', to: 'out' }],
      }
    }
    const table = `t${(index - 1) / 2}`
    const { params, credentials } = postgresConnection(db.name)
    return {
      id: `load-pg-${index}`,
      nodes: [
        {
          id: 'rows',
          role: 'source',
          provider: 'postgres',
          connection: {
            params,
            sealedCredentials: sealCredentials(
              serverKey,
              dispatcher.publicKey,
              credentials,
              { operation: 'run', runId: `load-${suffix}-${index}`, nodeId: 'rows' },
              { provider: 'postgres', paramsSchema: postgresProvider.definition.params, params },
            ),
          },
          stream: { table, pageSize: 500 },
        },
        {
          id: 'docs',
          role: 'sink',
          provider: 'fs',
          connection: { params: { root: join(work.dir, 'out') } },
          stream: { kind: 'document', file: `${table}.jsonl` },
          batch: { maxItems: 250 },
        },
      ],
      edges: [{ from: 'rows', to: 'docs' }],
    }
  }

  it('all complete, every output exact', async () => {
    await mkdir(join(work.dir, 'out'), { recursive: true })
    const runIds = Array.from({ length: RUNS }, (_, i) => `load-${suffix}-${i}`)
    const started = Date.now()
    const replies = await Promise.all(
      runIds.map(async (runId, i) => {
        const reply = await client.request(
          subjects.runsStart,
          JSON.stringify({ runId, pipeline: pipelineFor(i) }),
          { timeout: 30_000 },
        )
        return JSON.parse(decoder.decode(reply.data))
      }),
    )
    for (const reply of replies) expect(reply).toMatchObject({ accepted: true })
    expect(dispatcher.activeRuns().length).toBeGreaterThan(1)
    const events = await Promise.all(runIds.map(terminalEvent))
    const took = Date.now() - started
    console.log(`[load] ${RUNS} concurrent runs ended in ${took} ms`)
    expect(
      events.map((e) => `${e.runId}: ${e.type}${e.type === 'failed' ? ` ${e.error.message}` : ''}`),
    ).toEqual(runIds.map((id) => `${id}: completed`))

    for (let i = 0; i < RUNS; i += 2) {
      const dir = join(work.dir, 'out', `run-${i}`, 'f')
      const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort()
      expect(names.length).toBe(FILES)
      for (const name of names)
        expect(sha256(await readFile(join(dir, name))), `run ${i} ${name}`).toBe(
          expectedFiles.get(`f/${name}`),
        )
    }
    for (let r = 0; r < RUNS / 2; r++) {
      const lines = (await readFile(join(work.dir, 'out', `t${r}.jsonl`), 'utf8'))
        .trim()
        .split('\n')
      const ids = lines.map((line) => String(JSON.parse(line).id))
      expect(ids.length).toBe(ROWS)
      expect(new Set(ids).size).toBe(ROWS)
      expect(ids[0]).toBe(String(r * 10_000 + 1))
      expect(ids.at(-1)).toBe(String(r * 10_000 + ROWS))
    }
  })
})
