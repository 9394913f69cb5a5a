import { randomBytes } from 'node:crypto'
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { createCurve, type KeyPair } from '@nats-io/nkeys'
import { connect, type NatsConnection, NoRespondersError } from '@nats-io/transport-node'
import {
  CancelReplySchema,
  CheckpointValueSchema,
  CheckReplySchema,
  createSubjects,
  DiscoverReplySchema,
  ErrorReplySchema,
  type Pipeline,
  ProvidersReplySchema,
  type RunEvent,
  RunsStartReplySchema,
  validateMessage,
  validateRunEvent,
} from '@nvisy/protocol'
import { memoryLogger, type TSchema } from '@nvisy/provider-core'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executePipeline } from '../executor/index.js'
import { MapProviderRegistry } from '../registry.js'
import { createTestWorld, records, type TestWorld } from './__fixtures__/test-providers.js'
import {
  type CredentialScope,
  type Dispatcher,
  type DispatcherNaming,
  sealCredentials,
  startDispatcher,
} from './index.js'

const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const natsHost = new URL(NATS_URL)
const skip = await serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
  tcpReachable(natsHost.hostname, Number(natsHost.port || 4222)),
)

const suffix = randomBytes(4).toString('hex')
const naming: DispatcherNaming = {
  prefix: `nvisytest.${suffix}.v1`,
  eventsStream: `NVISY_TEST_EVENTS_${suffix}`,
  checkpointBucket: `nvisy-test-checkpoints-${suffix}`,
  queueGroup: `nvisy-runtime-${suffix}`,
  nonceBucket: `nvisy-test-nonces-${suffix}`,
  workStream: `NVISY_TEST_WORK_${suffix}`,
  workConsumer: `nvisy-test-workers-${suffix}`,
  runsBucket: `nvisy-test-runs-${suffix}`,
}
const subjects = createSubjects(naming.prefix)
const TOKEN = `tok-${randomBytes(12).toString('hex')}`
const encoder = new TextEncoder()
const decoder = new TextDecoder()

async function expectNoResponders(request: Promise<unknown>) {
  const error = await request.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect((error as Error)?.cause ?? error).toBeInstanceOf(NoRespondersError)
}

describe.skipIf(skip)('NATS dispatcher (a test client plays the Rust server)', () => {
  let server: NatsConnection
  let js: JetStreamClient
  const serverKey: KeyPair = createCurve()
  const logger = memoryLogger()
  let world: TestWorld
  let a: Dispatcher
  let b: Dispatcher | undefined
  const sealedSeen: string[] = []
  // Instances of one queue group share the runtime key: the server seals to one public key.
  const runtimeSeed = decoder.decode(createCurve().getSeed())

  function start(instanceId: string, extra: Record<string, unknown> = {}) {
    return startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([world.provider]),
      execute: executePipeline,
      serverPublicKey: serverKey.getPublicKey(),
      logger,
      naming,
      instanceId,
      runtimeSeed,
      drainTimeoutMs: 10_000,
      executeOptions: { progressIntervalMs: 20, retryBaseDelayMs: 5 },
      ...extra,
    })
  }

  async function request(subject: string, body: unknown, timeout = 10_000): Promise<any> {
    const payload =
      typeof body === 'string' ? encoder.encode(body) : encoder.encode(JSON.stringify(body))
    const reply = await server.request(subject, payload, { timeout })
    return JSON.parse(decoder.decode(reply.data))
  }

  function expectValid(schema: TSchema, value: unknown) {
    const result = validateMessage(schema, value)
    expect(result.ok ? [] : result.issues).toEqual([])
  }

  let requests = 0
  /** Seal as the server does: bound to one run node or request of the `vaulted` provider. */
  function seal(
    credentials: Record<string, unknown>,
    scope: CredentialScope,
    key: KeyPair = serverKey,
    to = a.publicKey,
    params: Record<string, unknown> = { region: 'eu' },
  ) {
    const sealed = sealCredentials(key, to, credentials, scope, {
      provider: 'vaulted',
      paramsSchema: world.provider.definition.params,
      params,
    })
    sealedSeen.push(sealed)
    return sealed
  }

  /** A check or discover request with credentials sealed for it. */
  function connectionRequest(
    credentials: Record<string, unknown> = { token: TOKEN },
    operation: 'check' | 'discover' = 'check',
    provider = 'vaulted',
  ) {
    const requestId = `req-${suffix}-${++requests}`
    return {
      requestId,
      provider,
      connection: {
        params: { region: 'eu' },
        sealedCredentials: seal(credentials, { operation, requestId }),
      },
    }
  }

  /** Stands for "seal { token } for this node when the run id is known" (see startRun). */
  const PENDING = 'PENDING'
  function connection() {
    return { params: { region: 'eu' }, sealedCredentials: PENDING }
  }

  /** The pipeline with each pending connection sealed for its node of run `runId`. */
  function bind(runId: string, p: Pipeline): Pipeline {
    return {
      ...p,
      nodes: p.nodes.map((node) =>
        node.connection.sealedCredentials === PENDING
          ? {
              ...node,
              connection: {
                ...node.connection,
                sealedCredentials: seal(
                  { token: TOKEN },
                  { operation: 'run', runId, nodeId: node.id },
                ),
              },
            }
          : node,
      ),
    }
  }

  function pipeline(id: string, source = 'in', sink = 'out'): Pipeline {
    return {
      id,
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'vaulted',
          connection: connection(),
          stream: { name: source },
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'vaulted',
          connection: connection(),
          stream: { name: sink },
          batch: { maxItems: 10 },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 10, checkpointEverySeconds: 0.05 },
    }
  }

  /** Every event of a run, read from JetStream, until its terminal event. */
  async function runEvents(runId: string, timeoutMs = 20_000): Promise<RunEvent[]> {
    const consumer = await js.consumers.get(naming.eventsStream, {
      filter_subjects: subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    const events: RunEvent[] = []
    const timer = setTimeout(() => messages.stop(), timeoutMs)
    for await (const message of messages) {
      const event = message.json<RunEvent>()
      events.push(event)
      if (event.type === 'completed' || event.type === 'failed' || event.type === 'cancelled') break
    }
    clearTimeout(timer)
    messages.stop()
    for (const event of events) {
      const checked = validateRunEvent(event)
      expect(checked.ok ? [] : checked.issues, `event ${event.type} #${event.seq}`).toEqual([])
    }
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i))
    return events
  }

  async function checkpoint(pipelineId: string, nodeId: string) {
    const kv = await new Kvm(js).open(naming.checkpointBucket)
    const entry = await kv.get(`${pipelineId}.${nodeId}`)
    if (!entry || entry.operation !== 'PUT') return undefined
    const value = entry.json<any>()
    expectValid(CheckpointValueSchema, value)
    return value
  }

  async function startRun(runId: string, p: Pipeline, extra: Record<string, unknown> = {}) {
    const reply = await request(subjects.runsStart, { runId, pipeline: bind(runId, p), ...extra })
    expectValid(RunsStartReplySchema, reply)
    return reply as { accepted: true; runId: string; instanceId: string }
  }

  beforeAll(async () => {
    world = createTestWorld(TOKEN)
    world.sources.set('in', records(95))
    server = await connect({ servers: NATS_URL, noAsyncTraces: true })
    js = jetstream(server)
    a = await start('instance-a')
  })

  afterAll(async () => {
    await a?.close()
    await b?.close()
    if (server) {
      const jsm = await jetstreamManager(server)
      await jsm.streams.delete(naming.eventsStream).catch(() => {})
      await jsm.streams.delete(`KV_${naming.checkpointBucket}`).catch(() => {})
      await jsm.streams.delete(`KV_${naming.nonceBucket}`).catch(() => {})
      await server.close()
    }
  })

  it('answers the catalog with the runtime public key', async () => {
    const reply = await request(subjects.providers, {})
    expectValid(ProvidersReplySchema, reply)
    expect(reply.runtime).toEqual({
      id: 'instance-a',
      version: expect.any(String),
      publicKey: a.publicKey,
    })
    expect(reply.providers.map((p: any) => p.id)).toEqual(['vaulted'])
    expect(reply.providers[0].schemas.credentials.properties.token.secret).toBe(true)
    // An empty payload is a bare request too.
    const bare = JSON.parse(
      decoder.decode(
        (await server.request(subjects.providers, new Uint8Array(), { timeout: 5000 })).data,
      ),
    )
    expect(bare.runtime.publicKey).toBe(a.publicKey)
  })

  it('checks and discovers with sealed credentials, closing every connection', async () => {
    const closesBefore = world.closes
    const check = await request(subjects.check, connectionRequest())
    expectValid(CheckReplySchema, check)
    const discover = await request(subjects.discover, connectionRequest(undefined, 'discover'))
    expectValid(DiscoverReplySchema, discover)
    expect(discover.streams.map((s: any) => s.name)).toContain('in')
    expect(world.closes).toBe(closesBefore + 2)
  })

  it('refuses bad credentials with an error reply that holds no secret', async () => {
    const wrong = await request(subjects.check, connectionRequest({ token: 'wrong-token-value' }))
    expectValid(ErrorReplySchema, wrong)
    expect(wrong.error).toMatchObject({ kind: 'auth', providerId: 'vaulted' })
    expect(wrong.error.message).not.toContain('wrong-token-value')

    const otherServer = createCurve()
    const forged = await request(subjects.check, {
      requestId: 'forged-1',
      provider: 'vaulted',
      connection: {
        params: { region: 'eu' },
        sealedCredentials: seal(
          { token: TOKEN },
          { operation: 'check', requestId: 'forged-1' },
          otherServer,
        ),
      },
    })
    expect(forged.error.kind).toBe('auth')
    expect(forged.error.message).toMatch(/not sealed by the configured server key/)

    const plain = await request(subjects.check, {
      provider: 'vaulted',
      connection: { params: { region: 'eu' }, credentials: { token: TOKEN } },
    })
    expect(plain.error.kind).toBe('config')
    expect(plain.error.issues).toEqual([
      expect.objectContaining({ path: '/connection/credentials', rule: 'sealed' }),
    ])

    const badShape = await request(subjects.check, connectionRequest({ token: 5 }))
    expect(badShape.error.kind).toBe('config')
    expect(badShape.error.issues).toEqual([
      expect.objectContaining({ path: '/connection/credentials/token', rule: 'type' }),
    ])

    const badParams = await request(subjects.check, {
      requestId: 'bad-params-1',
      provider: 'vaulted',
      connection: {
        params: {},
        sealedCredentials: seal(
          { token: TOKEN },
          { operation: 'check', requestId: 'bad-params-1' },
          serverKey,
          a.publicKey,
          {},
        ),
      },
    })
    expect(badParams.error.issues).toEqual([
      expect.objectContaining({ path: '/connection/params/region', rule: 'required' }),
    ])
  })

  it('runs a pipeline: events on JetStream, checkpoints in KV, items in the sink', async () => {
    const accepted = await startRun('run-complete-1', pipeline('copy-1', 'in', 'out-1'))
    expect(accepted).toEqual({ accepted: true, runId: 'run-complete-1', instanceId: 'instance-a' })
    const events = await runEvents('run-complete-1')
    expect(events[0]).toMatchObject({
      type: 'started',
      runId: 'run-complete-1',
      pipelineId: 'copy-1',
      seq: 0,
    })
    expect(events.at(-1)).toMatchObject({ type: 'completed' })
    expect(events.some((e) => e.type === 'checkpoint')).toBe(true)
    expect(world.sinks.get('out-1')?.size).toBe(95)
    expect(await checkpoint('copy-1', 'src')).toMatchObject({
      context: { index: 94 },
      runId: 'run-complete-1',
    })

    // Resume: the same pipeline reads only what arrived since.
    world.sources.set('in-2', records(20))
    await startRun('run-resume-1', pipeline('copy-2', 'in-2', 'out-2'))
    await runEvents('run-resume-1')
    world.sources.get('in-2')!.push(...records(5, 20))
    world.sinks.get('out-2')!.clear()
    await startRun('run-resume-2', pipeline('copy-2', 'in-2', 'out-2'))
    const resumed = await runEvents('run-resume-2')
    expect(resumed.at(-1)?.type).toBe('completed')
    expect([...world.sinks.get('out-2')!.keys()]).toEqual(['20', '21', '22', '23', '24'])
    expect(await checkpoint('copy-2', 'src')).toMatchObject({
      context: { index: 24 },
      runId: 'run-resume-2',
    })
  })

  it('cancels a run; a cancel for an unknown run has no responder', async () => {
    world.sources.set('slow', records(400))
    world.readDelayMs = 5
    try {
      await startRun('run-cancel-1', pipeline('cancel-1', 'slow', 'out-cancel'))
      const eventsPromise = runEvents('run-cancel-1')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const reply = await request(subjects.runCancel('run-cancel-1'), { reason: 'user asked' })
      expectValid(CancelReplySchema, reply)
      const events = await eventsPromise
      const last = events.at(-1)!
      expect(last).toMatchObject({ type: 'cancelled', reason: 'user asked' })
      const saved = await checkpoint('cancel-1', 'src')
      expect(saved.context.index).toBeLessThan(399)
      // Everything up to the checkpoint reached the sink.
      for (let i = 0; i <= saved.context.index; i++)
        expect(world.sinks.get('out-cancel')?.has(String(i))).toBe(true)
      await expectNoResponders(
        server.request(subjects.runCancel('no-such-run'), encoder.encode('{}'), { timeout: 3000 }),
      )
    } finally {
      world.readDelayMs = 0
    }
  })

  it('answers malformed messages with error replies while a run goes on unaffected', async () => {
    world.sources.set('steady', records(150))
    world.readDelayMs = 2
    try {
      await startRun('run-steady-1', pipeline('steady-1', 'steady', 'out-steady'))
      const eventsPromise = runEvents('run-steady-1')

      const notJson = await request(subjects.runsStart, '{"runId": "x", pipeline')
      expect(notJson.error).toMatchObject({
        kind: 'validation',
        issues: [{ path: '/', rule: 'json' }],
      })

      const missing = await request(subjects.runsStart, { runId: 'r-missing' })
      expect(missing.error.kind).toBe('validation')
      expect(missing.error.issues).toContainEqual(
        expect.objectContaining({ path: '/pipeline', rule: 'required' }),
      )

      const wrongType = await request(subjects.runsStart, {
        runId: 42,
        pipeline: pipeline('x'),
        resume: 'yes',
      })
      expect(wrongType.error.issues).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ path: '/runId', rule: 'type' }),
          expect.objectContaining({ path: '/resume', rule: 'type' }),
        ]),
      )

      // A partition count out of range is refused, naming the field.
      const partitioned = await request(subjects.runsStart, {
        runId: 'r-partitioned',
        pipeline: pipeline('partitioned-1'),
        partitions: 0,
      })
      expect(partitioned.error).toMatchObject({ kind: 'validation' })
      expect(partitioned.error.issues).toContainEqual(
        expect.objectContaining({ path: '/partitions' }),
      )

      const unknown = pipeline('unknown-1')
      unknown.nodes[1]!.provider = 'nope'
      const unknownReply = await request(subjects.runsStart, {
        runId: 'r-unknown',
        pipeline: unknown,
      })
      expect(unknownReply.error.kind).toBe('validation')
      expect(unknownReply.error.issues).toContainEqual(
        expect.objectContaining({ path: '/pipeline/nodes/1/provider' }),
      )

      const badStream = pipeline('bad-stream')
      badStream.nodes[0]!.stream = { name: '' }
      const badStreamReply = await request(subjects.runsStart, {
        runId: 'r-bad-stream',
        pipeline: badStream,
      })
      expect(badStreamReply.error.issues).toContainEqual(
        expect.objectContaining({ path: '/pipeline/nodes/0/stream/name', rule: 'minLength' }),
      )

      const plain = pipeline('plain-1')
      plain.nodes[0]!.connection = { params: { region: 'eu' }, credentials: { token: TOKEN } }
      const plainReply = await request(subjects.runsStart, { runId: 'r-plain', pipeline: plain })
      expect(plainReply.error.issues).toEqual([
        expect.objectContaining({
          path: '/pipeline/nodes/0/connection/credentials',
          rule: 'sealed',
        }),
      ])

      const unknownProvider = await request(
        subjects.check,
        connectionRequest(undefined, 'check', 'nope'),
      )
      expect(unknownProvider.error).toMatchObject({
        kind: 'not_found',
        issues: [{ path: '/provider', rule: 'provider' }],
      })

      const badCancel = await request(subjects.runCancel('run-steady-1'), { reason: 7 })
      expect(badCancel.error.issues).toEqual([
        expect.objectContaining({ path: '/reason', rule: 'type' }),
      ])

      const events = await eventsPromise
      expect(events.at(-1)?.type).toBe('completed')
      expect(world.sinks.get('out-steady')?.size).toBe(150)
    } finally {
      world.readDelayMs = 0
    }
  })

  it('shares runs between two instances in one queue group', async () => {
    b = await start('instance-b')
    world.sources.set('small', records(3))
    expect(b.publicKey).toBe(a.publicKey)
    const instances = new Set<string>()
    for (let i = 0; i < 16; i++) {
      const reply = await startRun(
        `run-share-${i}`,
        pipeline(`share-${i}`, 'small', `out-share-${i}`),
      )
      instances.add(reply.instanceId)
    }
    expect([...instances].sort()).toEqual(['instance-a', 'instance-b'])
    for (let i = 0; i < 16; i++) {
      const events = await runEvents(`run-share-${i}`)
      expect(events.at(-1)?.type).toBe('completed')
      expect(world.sinks.get(`out-share-${i}`)?.size).toBe(3)
    }
  })

  it('drains: new runs stop, a running one checkpoints and ends with reason draining', async () => {
    world.sources.set('long', records(2000))
    world.readDelayMs = 3
    try {
      const d = await start('instance-drain')
      // Stop a and b so the run lands on the draining instance.
      await a.drain()
      await b?.drain()
      b = undefined
      const seeded: Pipeline = pipeline('drain-1', 'long', 'out-drain')
      const accepted = await startRun('run-drain-1', seeded)
      expect(accepted.instanceId).toBe('instance-drain')
      const eventsPromise = runEvents('run-drain-1')
      await new Promise((resolve) => setTimeout(resolve, 300))
      await d.drain()
      expect(d.activeRuns()).toEqual([])
      const events = await eventsPromise
      expect(events.at(-1)).toMatchObject({ type: 'cancelled', reason: 'draining' })
      const saved = await checkpoint('drain-1', 'src')
      expect(saved.context.index).toBeGreaterThan(0)
      expect(saved.context.index).toBeLessThan(1999)
      await expectNoResponders(
        server.request(subjects.runsStart, encoder.encode('{}'), { timeout: 2000 }),
      )
    } finally {
      world.readDelayMs = 0
      a = await start('instance-a')
    }
  })

  it('never logs credentials', () => {
    const text = JSON.stringify(logger.lines)
    expect(logger.lines.length).toBeGreaterThan(0)
    expect(text).not.toContain(TOKEN)
    expect(text).not.toContain('wrong-token-value')
    for (const sealed of sealedSeen) expect(text).not.toContain(sealed)
  })
})
