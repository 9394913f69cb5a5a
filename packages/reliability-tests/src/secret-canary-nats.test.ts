// Secret canaries through the NATS path: each provider gets credentials whose secret field is
// a unique canary (a wrong password, secret key...), sealed to the runtime key the way the
// server does. A `check` must answer with an auth error reply, and a run using the same
// credentials (the provider as source, and as sink where fs data converts to it) must fail;
// the canary must appear in no reply, run event, checkpoint value or captured log line.
// The in-process conformance kit covers check/read/write for each provider; this covers the
// dispatcher: credential opening, error replies, the JetStream events and the KV bucket.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { createCurve } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  type MongoEmulator,
  type Neo4jEmulator,
  type PineconeEmulator,
  type SearchEmulator,
  startMongoEmulator,
  startNeo4jEmulator,
  startPineconeEmulator,
  startSearchEmulator,
} from '@nvisy/emulators'
import { createSubjects, type Pipeline, type PipelineNode, type RunEvent } from '@nvisy/protocol'
import { memoryLogger, type Provider } from '@nvisy/provider-core'
import { elasticsearchProvider } from '@nvisy/provider-elasticsearch'
import { fsProvider } from '@nvisy/provider-fs'
import { mongoProvider } from '@nvisy/provider-mongodb'
import { mysqlProvider } from '@nvisy/provider-mysql'
import { natsProvider } from '@nvisy/provider-nats'
import { neo4jProvider } from '@nvisy/provider-neo4j'
import { opensearchProvider } from '@nvisy/provider-opensearch'
import { pineconeProvider } from '@nvisy/provider-pinecone'
import { postgresProvider } from '@nvisy/provider-postgres'
import { redisProvider } from '@nvisy/provider-redis'
import { s3Provider } from '@nvisy/provider-s3'
import { freePort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import {
  type CredentialScope,
  type Dispatcher,
  type DispatcherNaming,
  executePipeline,
  MapProviderRegistry,
  sealCredentials,
  startDispatcher,
} from '@nvisy/runtime'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeJsonl } from './support/files.js'
import { NATS_URL, natsConnect, natsSkipReason } from './support/nats.js'
import { POSTGRES_URL, postgresAddress, postgresSkipReason } from './support/postgres.js'
import { scratch } from './support/runtime-process.js'
import { s3Connection, s3SkipReason } from './support/s3.js'

const MYSQL_URL = new URL(process.env.NVISY_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test')
const REDIS_URL = new URL(process.env.NVISY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0')
const NATS_SERVER_BINARY = process.env.NVISY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server'

const natsSkip = await natsSkipReason()
const decoder = new TextDecoder()

/** JSON of anything, with Error objects spelled out (message, stack, cause, own fields). */
function dump(value: unknown): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1')
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[circular]'
      seen.add(v)
      if (v instanceof Error) {
        const own: Record<string, unknown> = {}
        for (const key of Object.getOwnPropertyNames(v)) own[key] = (v as any)[key]
        return { name: v.name, message: v.message, stack: v.stack, cause: v.cause, ...own }
      }
    }
    return v
  })
}

/** A nats-server with user/password auth (u/p), so a wrong password is refused. */
async function startAuthNatsServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    NATS_SERVER_BINARY,
    ['-a', '127.0.0.1', '-p', String(port), '--user', 'u', '--pass', 'p'],
    { stdio: 'ignore' },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + 10_000
  while (!(await tcpReachable('127.0.0.1', port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`nats-server (${NATS_SERVER_BINARY}) did not start on port ${port}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

interface CanaryCase {
  id: string
  provider: Provider
  skip: () => Promise<string | false>
  /** The connection with the canary as its secret (credentials are sealed by the test). */
  connection: (canary: string) => { params: Record<string, unknown>; credentials: object }
  /** The error kind `check` answers with. */
  kind: string
  /**
   * Source stream settings and the fs sink stream its data converts to; without `fsSink` the
   * run writes to the same provider (same canary credentials) with `sink.stream`.
   */
  source: { stream: Record<string, unknown>; fsSink?: Record<string, unknown> }
  /** Sink stream settings and the fs source stream feeding it, when fs data converts to it. */
  sink?: { stream: Record<string, unknown>; fsSource?: Record<string, unknown> }
}

let natsAuth: { url: string; stop: () => Promise<void> } | undefined
// The emulators, started with auth on: a wrong secret is refused as by the real services.
let mongo: MongoEmulator | undefined
let neo4j: Neo4jEmulator | undefined
let pinecone: PineconeEmulator | undefined
let elasticsearch: SearchEmulator | undefined
let opensearch: SearchEmulator | undefined
const notSkipped = async () => false as const
const suffix = randomBytes(4).toString('hex')

const CASES: CanaryCase[] = [
  {
    id: 'postgres',
    provider: postgresProvider,
    skip: postgresSkipReason,
    // The local server trusts 127.0.0.1, so any password passes for a real role: a role that
    // does not exist is refused at the same authentication stage (SQLSTATE class 28).
    connection: (canary) => ({
      params: {
        host: postgresAddress.host,
        port: postgresAddress.port,
        database: new URL(POSTGRES_URL).pathname.slice(1) || 'postgres',
        connectTimeoutMs: 5000,
      },
      credentials: { user: `nvisy_no_such_role_${suffix}`, password: canary },
    }),
    kind: 'auth',
    source: {
      stream: { table: 'items' },
      fsSink: { kind: 'document', file: 'postgres.jsonl' },
    },
  },
  {
    id: 'mysql',
    provider: mysqlProvider,
    skip: () =>
      serviceSkipReason('MySQL', MYSQL_URL.host, () =>
        tcpReachable(MYSQL_URL.hostname, Number(MYSQL_URL.port || 3306)),
      ),
    connection: (canary) => ({
      params: {
        host: MYSQL_URL.hostname,
        port: Number(MYSQL_URL.port || 3306),
        database: MYSQL_URL.pathname.slice(1) || 'test',
      },
      credentials: { user: `nvisy_no_user_${suffix}`, password: canary },
    }),
    kind: 'auth',
    source: { stream: { table: 'items' }, fsSink: { kind: 'document', file: 'mysql.jsonl' } },
  },
  {
    id: 'redis',
    provider: redisProvider,
    skip: () =>
      serviceSkipReason('Redis', REDIS_URL.host, () =>
        tcpReachable(REDIS_URL.hostname, Number(REDIS_URL.port || 6379)),
      ),
    // An ACL user that does not exist: WRONGPASS.
    connection: (canary) => ({
      params: { host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) },
      credentials: { username: `nvisy_no_user_${suffix}`, password: canary },
    }),
    kind: 'auth',
    source: {
      stream: { kind: 'stream', key: `nvisy-canary-${suffix}` },
      fsSink: { kind: 'document', file: 'redis.jsonl' },
    },
    sink: {
      stream: { kind: 'document', prefix: `nvisy-canary-${suffix}:` },
      fsSource: { kind: 'document', file: 'docs.jsonl' },
    },
  },
  {
    id: 'nats',
    provider: natsProvider,
    skip: natsSkipReason,
    connection: (canary) => ({
      params: { servers: natsAuth!.url, stream: `NVISY_CANARY_${suffix}`, timeoutMs: 5000 },
      credentials: { user: 'u', password: canary },
    }),
    kind: 'auth',
    source: {
      stream: { subject: `nvisycanary.${suffix}.>` },
      fsSink: { kind: 'document', file: 'nats.jsonl' },
    },
  },
  {
    id: 's3',
    provider: s3Provider,
    skip: s3SkipReason,
    connection: (canary) => {
      const { params, credentials } = s3Connection(`nvisy-canary-${suffix}`)
      return { params, credentials: { ...credentials, secretAccessKey: canary } }
    },
    kind: 'auth',
    source: { stream: { prefix: 'src/' }, fsSink: { kind: 'blob', prefix: 's3/' } },
    sink: { stream: { prefix: 'out/' }, fsSource: { kind: 'blob', prefix: 'files/' } },
  },
  {
    id: 'mongodb',
    provider: mongoProvider,
    skip: notSkipped,
    connection: (canary) => ({
      params: {
        url: mongo!.url,
        database: `nvisy_canary_${suffix}`,
        serverSelectionTimeoutMS: 5000,
      },
      credentials: { username: 'nvisy', password: canary },
    }),
    kind: 'auth',
    source: {
      stream: { collection: 'items' },
      fsSink: { kind: 'document', file: 'mongodb.jsonl' },
    },
    sink: {
      stream: { collection: 'sink' },
      fsSource: { kind: 'document', file: 'docs.jsonl' },
    },
  },
  {
    id: 'neo4j',
    provider: neo4jProvider,
    skip: notSkipped,
    connection: (canary) => ({
      params: { url: neo4j!.url },
      credentials: { user: 'neo4j', password: canary },
    }),
    kind: 'auth',
    // Graph data converts to no fs kind: neo4j -> neo4j.
    source: { stream: { label: 'Item' } },
    sink: { stream: {} },
  },
  {
    id: 'pinecone',
    provider: pineconeProvider,
    skip: notSkipped,
    connection: (canary) => ({
      params: { index: 'main', controlPlaneUrl: pinecone!.url, maxRetries: 0 },
      credentials: { apiKey: canary },
    }),
    kind: 'auth',
    // Embeddings convert to no fs kind: pinecone -> pinecone.
    source: { stream: {} },
    sink: { stream: {} },
  },
  ...(['elasticsearch', 'opensearch'] as const).map(
    (id): CanaryCase => ({
      id,
      provider: id === 'elasticsearch' ? elasticsearchProvider : opensearchProvider,
      skip: notSkipped,
      connection: (canary) => ({
        params: { url: (id === 'elasticsearch' ? elasticsearch : opensearch)!.url, maxRetries: 0 },
        credentials: { username: 'nvisy', password: canary },
      }),
      kind: 'auth',
      source: { stream: { index: 'items' }, fsSink: { kind: 'document', file: `${id}.jsonl` } },
      sink: { stream: { index: 'sink' }, fsSource: { kind: 'document', file: 'docs.jsonl' } },
    }),
  ),
]

describe.skipIf(natsSkip)('secret canaries through the NATS dispatcher', () => {
  const naming: DispatcherNaming = {
    prefix: `nvisycanary.${suffix}.v1`,
    eventsStream: `NVISY_CANARY_EVENTS_${suffix}`,
    checkpointBucket: `nvisy-canary-checkpoints-${suffix}`,
    queueGroup: `nvisy-canary-${suffix}`,
    nonceBucket: `nvisy-canary-nonces-${suffix}`,
  }
  const subjects = createSubjects(naming.prefix)
  const logger = memoryLogger()
  const serverKey = createCurve()
  let dispatcher: Dispatcher
  let client: NatsConnection
  let work: Awaited<ReturnType<typeof scratch>>

  beforeAll(async () => {
    natsAuth = await startAuthNatsServer()
    mongo = await startMongoEmulator({ port: 0, users: { nvisy: `pw-${suffix}` } })
    neo4j = await startNeo4jEmulator({ port: 0, auth: { user: 'neo4j', password: `pw-${suffix}` } })
    elasticsearch = await startSearchEmulator({
      flavor: 'elasticsearch',
      users: { nvisy: `pw-${suffix}` },
    })
    opensearch = await startSearchEmulator({
      flavor: 'opensearch',
      users: { nvisy: `pw-${suffix}` },
    })
    pinecone = await startPineconeEmulator({
      apiKey: `key-${suffix}`,
      indexes: [{ name: 'main', dimension: 3, metric: 'cosine' }],
    })
    work = await scratch('canary')
    await mkdir(join(work.dir, 'in/files'), { recursive: true })
    await mkdir(join(work.dir, 'out'), { recursive: true })
    await writeFile(join(work.dir, 'in/files/a.txt'), 'a')
    await writeJsonl(join(work.dir, 'in/docs.jsonl'), 5, (i) => ({ id: `d${i}`, i }))
    dispatcher = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry(
        [fsProvider, ...CASES.map((c) => c.provider)].filter(
          (p, i, all) => all.findIndex((q) => q.id === p.id) === i,
        ),
      ),
      execute: executePipeline,
      serverPublicKey: serverKey.getPublicKey(),
      logger,
      naming,
      instanceId: `canary-${suffix}`,
      localPathRoots: [work.dir], // fs roots must be allowed (nvisy serve --fs-root)
      requestTimeoutMs: 20_000,
      drainTimeoutMs: 10_000,
      executeOptions: { progressIntervalMs: 200, retryBaseDelayMs: 10 },
    })
    client = await natsConnect()
  })

  afterAll(async () => {
    await dispatcher?.close()
    if (client) {
      const jsm = await jetstreamManager(client)
      await jsm.streams.delete(naming.eventsStream).catch(() => {})
      await jsm.streams.delete(`KV_${naming.checkpointBucket}`).catch(() => {})
      await jsm.streams.delete(`KV_${naming.nonceBucket}`).catch(() => {})
      await client.close()
    }
    await natsAuth?.stop()
    await mongo?.close()
    await neo4j?.close()
    await pinecone?.close()
    await elasticsearch?.close()
    await opensearch?.close()
    await work?.cleanup()
  })

  /** Sealed as the server does (v2): bound to one run node or request of this provider. */
  const sealed = (c: CanaryCase, canary: string, scope: CredentialScope) => {
    const { params, credentials } = c.connection(canary)
    return {
      params,
      sealedCredentials: sealCredentials(
        serverKey,
        dispatcher.publicKey,
        credentials as Record<string, unknown>,
        scope,
        {
          provider: c.provider.id,
          paramsSchema: c.provider.definition.params,
          params,
        },
      ),
    }
  }

  async function runEvents(runId: string, timeoutMs = 90_000): Promise<RunEvent[]> {
    const js = jetstream(client)
    const consumer = await js.consumers.get(naming.eventsStream, {
      filter_subjects: subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    const timer = setTimeout(() => messages.stop(), timeoutMs)
    const events: RunEvent[] = []
    try {
      for await (const message of messages) {
        // The raw bytes, so nothing a parse drops escapes the check.
        const event = JSON.parse(decoder.decode(message.data)) as RunEvent
        events.push(event)
        if (['completed', 'failed', 'cancelled'].includes(event.type)) return events
      }
    } finally {
      clearTimeout(timer)
      messages.stop()
    }
    throw new Error(`no terminal event for run ${runId} within ${timeoutMs} ms: ${dump(events)}`)
  }

  async function checkpointValues(): Promise<string[]> {
    const kv = await new Kvm(client).open(naming.checkpointBucket)
    const values: string[] = []
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key)
      if (entry) values.push(`${key}=${decoder.decode(entry.value)}`)
    }
    return values
  }

  async function startRun(runId: string, pipeline: Pipeline): Promise<string> {
    const reply = await client.request(
      subjects.runsStart,
      JSON.stringify({ runId, pipeline, resume: false }),
      { timeout: 15_000 },
    )
    const text = decoder.decode(reply.data)
    expect(JSON.parse(text), text).toMatchObject({ accepted: true })
    return text
  }

  const fsNode = (id: string, role: 'source' | 'sink', stream: Record<string, unknown>) =>
    ({
      id,
      role,
      provider: 'fs',
      connection: { params: { root: join(work.dir, role === 'source' ? 'in' : 'out') } },
      stream,
    }) as PipelineNode

  for (const c of CASES) {
    it(`${c.id}: no canary in the check reply, run events, checkpoints or logs`, async (ctx) => {
      const reason = await c.skip()
      if (reason) {
        console.warn(`[canary] ${c.id}: skipped: ${reason}`)
        ctx.skip(reason)
        return
      }
      const canary = `canary-${c.id}-${randomBytes(8).toString('hex')}`
      const logStart = logger.lines.length
      const seen: { where: string; text: string }[] = []

      // 1. check: an auth error reply.
      const checkReply = decoder.decode(
        (
          await client.request(
            subjects.check,
            JSON.stringify({
              requestId: `check-${c.id}-${suffix}`,
              provider: c.id,
              connection: sealed(c, canary, {
                operation: 'check',
                requestId: `check-${c.id}-${suffix}`,
              }),
            }),
            { timeout: 30_000 },
          )
        ).data,
      )
      seen.push({ where: 'check reply', text: checkReply })
      const parsed = JSON.parse(checkReply)
      expect(parsed.error?.kind, checkReply).toBe(c.kind)

      // 2. runs: the provider as the source (and as the sink where fs data converts to it).
      const runs: { runId: string; pipeline: Pipeline }[] = [
        {
          runId: `canary-${c.id}-src-${suffix}`,
          pipeline: {
            id: `canary-${c.id}-src`,
            nodes: [
              {
                id: 'src',
                role: 'source',
                provider: c.id,
                connection: sealed(c, canary, {
                  operation: 'run',
                  runId: `canary-${c.id}-src-${suffix}`,
                  nodeId: 'src',
                }),
                stream: c.source.stream,
              } as PipelineNode,
              c.source.fsSink
                ? fsNode('dst', 'sink', c.source.fsSink)
                : ({
                    id: 'dst',
                    role: 'sink',
                    provider: c.id,
                    connection: sealed(c, canary, {
                      operation: 'run',
                      runId: `canary-${c.id}-src-${suffix}`,
                      nodeId: 'dst',
                    }),
                    stream: c.sink!.stream,
                  } as PipelineNode),
            ],
            edges: [{ from: 'src', to: 'dst' }],
            options: { checkpointEveryItems: 1 },
          },
        },
      ]
      if (c.sink?.fsSource) {
        runs.push({
          runId: `canary-${c.id}-dst-${suffix}`,
          pipeline: {
            id: `canary-${c.id}-dst`,
            nodes: [
              fsNode('src', 'source', c.sink.fsSource),
              {
                id: 'dst',
                role: 'sink',
                provider: c.id,
                connection: sealed(c, canary, {
                  operation: 'run',
                  runId: `canary-${c.id}-dst-${suffix}`,
                  nodeId: 'dst',
                }),
                stream: c.sink.stream,
              } as PipelineNode,
            ],
            edges: [{ from: 'src', to: 'dst' }],
            options: { checkpointEveryItems: 1 },
          },
        })
      }
      for (const run of runs) {
        seen.push({
          where: `${run.runId} start reply`,
          text: await startRun(run.runId, run.pipeline),
        })
        const events = await runEvents(run.runId)
        const terminal = events.at(-1)!
        expect(terminal.type, dump(events)).toBe('failed')
        for (const event of events) seen.push({ where: `${run.runId} event`, text: dump(event) })
      }
      // The checkpoint bucket (shared by the cases: every value is checked each time).
      for (const value of await checkpointValues()) seen.push({ where: 'checkpoint', text: value })
      // Let the run's last log lines land.
      const deadline = Date.now() + 10_000
      while (dispatcher.activeRuns().length > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
      const lines = logger.lines.slice(logStart)
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) seen.push({ where: 'log line', text: dump(line) })

      const leaks = seen.filter((s) => s.text.includes(canary))
      expect(
        leaks.map((l) => `${l.where}: ${l.text.slice(0, 500)}`),
        `the canary ${canary} leaked`,
      ).toEqual([])
      // Something was looked at: replies, events and log lines.
      expect(seen.length).toBeGreaterThan(3)
    })
  }
})
