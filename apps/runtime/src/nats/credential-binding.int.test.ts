// Issue 15: a client on the bus copies a legitimately sealed credential into its own request
// (another host, another run, the same message again...). Every attack must be refused in the
// reply, before anything connects. A real NATS (JetStream) server plays the bus; a tiny TCP
// server that asks for a cleartext password plays the attacker's fake PostgreSQL.
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { createCurve, type KeyPair } from '@nats-io/nkeys'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { createSubjects, ErrorReplySchema, type Pipeline, validateMessage } from '@nvisy/protocol'
import { memoryLogger } from '@nvisy/provider-core'
import { postgresProvider } from '@nvisy/provider-postgres'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executePipeline } from '../executor/index.js'
import { MapProviderRegistry } from '../registry.js'
import { createTestWorld, records, type TestWorld } from './__fixtures__/test-providers.js'
import {
  type CredentialScope,
  type Dispatcher,
  type SealOptions,
  sealCredentials,
  startDispatcher,
} from './index.js'

const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const natsHost = new URL(NATS_URL)
const skip =
  (await serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
    tcpReachable(natsHost.hostname, Number(natsHost.port || 4222)),
  )) ??
  (await serviceSkipReason('PostgreSQL', '127.0.0.1:5432', () => tcpReachable('127.0.0.1', 5432)))

const suffix = randomBytes(4).toString('hex')
const nonceBucket = `nvisy-test-nonces-${suffix}`
function namingFor(name: string) {
  return {
    prefix: `nvisytest.bind${name}${suffix}.v1`,
    eventsStream: `NVISY_TEST_BIND_${name.toUpperCase()}_${suffix}`,
    checkpointBucket: `nvisy-test-bind-${name}-${suffix}`,
    queueGroup: `nvisy-runtime-bind-${suffix}`,
    nonceBucket,
  }
}
const PASSWORD = `canary-${randomBytes(12).toString('hex')}`
const TOKEN = `tok-${randomBytes(12).toString('hex')}`
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const PG = { host: '127.0.0.1', port: 5432, database: 'test' }

/** A fake PostgreSQL: asks every client for a cleartext password and records what it gets. */
interface FakeServer {
  server: Server
  port: number
  connections: number
  received: Buffer
}

async function fakePostgres(): Promise<FakeServer> {
  const fake: FakeServer = {
    server: undefined as unknown as Server,
    port: 0,
    connections: 0,
    received: Buffer.alloc(0),
  }
  fake.server = createServer((socket: Socket) => {
    fake.connections++
    let asked = false
    socket.on('data', (chunk) => {
      fake.received = Buffer.concat([fake.received, chunk])
      if (!asked) {
        asked = true
        // AuthenticationCleartextPassword: 'R', length 8, code 3.
        socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]))
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve))
  fake.port = (fake.server.address() as { port: number }).port
  return fake
}

describe.skipIf(skip)('sealed credentials over NATS: binding and replay (issue 15)', () => {
  let bus: NatsConnection
  let fake: FakeServer
  let world: TestWorld
  let a: Dispatcher
  let b: Dispatcher
  const serverKey: KeyPair = createCurve()
  const runtimeSeed = decoder.decode(createCurve().getSeed())
  const logger = memoryLogger()
  const sealedSeen: string[] = []
  const subjectsA = createSubjects(namingFor('a').prefix)
  const subjectsB = createSubjects(namingFor('b').prefix)

  function start(name: 'a' | 'b') {
    return startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([postgresProvider, world.provider]),
      execute: executePipeline,
      serverPublicKey: serverKey.getPublicKey(),
      runtimeSeed,
      logger,
      naming: namingFor(name),
      instanceId: `instance-${name}`,
      executeOptions: { progressIntervalMs: 20, retryBaseDelayMs: 5 },
    })
  }

  async function request(subject: string, body: unknown): Promise<any> {
    const reply = await bus.request(subject, encoder.encode(JSON.stringify(body)), {
      timeout: 15_000,
    })
    return JSON.parse(decoder.decode(reply.data))
  }

  function sealPg(
    scope: CredentialScope,
    params: Record<string, unknown> = PG,
    extra: Partial<SealOptions> = {},
    key: KeyPair = serverKey,
    to = a.publicKey,
  ): string {
    const sealed = sealCredentials(key, to, { user: 'postgres', password: PASSWORD }, scope, {
      provider: 'postgres',
      paramsSchema: postgresProvider.definition.params,
      params,
      ...extra,
    })
    sealedSeen.push(sealed)
    return sealed
  }

  function sealVaulted(runId: string, nodeId: string): string {
    const sealed = sealCredentials(
      serverKey,
      a.publicKey,
      { token: TOKEN },
      { operation: 'run', runId, nodeId },
      {
        provider: 'vaulted',
        paramsSchema: world.provider.definition.params,
        params: { region: 'eu' },
      },
    )
    sealedSeen.push(sealed)
    return sealed
  }

  /** A run reading a PostgreSQL table into the in-memory sink. */
  function pgPipeline(
    id: string,
    runId: string,
    sealed: string,
    params: Record<string, unknown> = PG,
  ): Pipeline {
    return {
      id,
      nodes: [
        {
          id: 'src',
          role: 'source',
          provider: 'postgres',
          connection: { params, sealedCredentials: sealed },
          stream: { table: `bind_${suffix}` },
        },
        {
          id: 'dst',
          role: 'sink',
          provider: 'vaulted',
          connection: { params: { region: 'eu' }, sealedCredentials: sealVaulted(runId, 'dst') },
          stream: { name: `out-${id}` },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
    }
  }

  function expectRefused(reply: any, rule: string, path: string) {
    const checked = validateMessage(ErrorReplySchema, reply)
    expect(checked.ok ? [] : checked.issues).toEqual([])
    expect(reply.accepted).toBeUndefined()
    expect(reply.error.kind).toBe('auth')
    expect(reply.error.issues).toEqual([expect.objectContaining({ path, rule })])
    expect(JSON.stringify(reply)).not.toContain(PASSWORD)
  }

  async function nothingReachedTheFake() {
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(fake.connections).toBe(0)
    expect(fake.received.length).toBe(0)
    expect(fake.received.includes(PASSWORD)).toBe(false)
  }

  async function waitForTerminal(subjects: typeof subjectsA, name: string, runId: string) {
    const js = jetstream(bus)
    const consumer = await js.consumers.get(namingFor(name).eventsStream, {
      filter_subjects: subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    const timer = setTimeout(() => messages.stop(), 20_000)
    let last: any
    for await (const message of messages) {
      last = message.json()
      if (['completed', 'failed', 'cancelled', 'partial'].includes(last.type)) break
    }
    clearTimeout(timer)
    messages.stop()
    // The instance forgets the run just after its terminal event.
    for (const d of [a, b]) {
      while (d.activeRuns().includes(runId)) await new Promise((r) => setTimeout(r, 10))
    }
    return last
  }

  beforeAll(async () => {
    world = createTestWorld(TOKEN)
    world.sources.set('in', records(5))
    fake = await fakePostgres()
    bus = await connect({ servers: NATS_URL, noAsyncTraces: true })
    a = await start('a')
    b = await start('b')
    // The legitimate source table.
    const client = new pg.Client({ ...PG, user: 'postgres' })
    await client.connect()
    await client.query(`DROP TABLE IF EXISTS bind_${suffix}`)
    await client.query(`CREATE TABLE bind_${suffix} (id integer PRIMARY KEY, name text)`)
    await client.query(`INSERT INTO bind_${suffix} SELECT g, 'n' || g FROM generate_series(1, 7) g`)
    await client.end()
  })

  afterAll(async () => {
    await a?.close()
    await b?.close()
    fake?.server.close()
    if (bus) {
      const jsm = await jetstreamManager(bus)
      for (const name of ['a', 'b']) {
        await jsm.streams.delete(namingFor(name).eventsStream).catch(() => {})
        await jsm.streams.delete(`KV_${namingFor(name).checkpointBucket}`).catch(() => {})
      }
      await jsm.streams.delete(`KV_${nonceBucket}`).catch(() => {})
      await bus.close()
    }
    const client = new pg.Client({ ...PG, user: 'postgres' })
    await client.connect()
    await client.query(`DROP TABLE IF EXISTS bind_${suffix}`)
    await client.end()
  })

  it('a legitimately sealed blob works for the check it was sealed for', async () => {
    const requestId = `chk-${suffix}-ok`
    const reply = await request(subjectsA.check, {
      requestId,
      provider: 'postgres',
      connection: { params: PG, sealedCredentials: sealPg({ operation: 'check', requestId }) },
    })
    expect(reply).toEqual({ ok: true, latencyMs: expect.any(Number) })
  })

  it('(a) redirect: the blob copied into a check whose host/port point at a fake server is refused, the fake receives nothing', async () => {
    const requestId = `chk-${suffix}-redirect`
    const sealed = sealPg({ operation: 'check', requestId })
    const reply = await request(subjectsA.check, {
      requestId,
      provider: 'postgres',
      connection: { params: { ...PG, port: fake.port }, sealedCredentials: sealed },
    })
    expectRefused(reply, 'binding', '/connection/sealedCredentials')
    expect(reply.error.message).toMatch(/destination params differ/)
    await nothingReachedTheFake()
    // The refused attempt did not burn the blob: the legitimate request still works.
    const legit = await request(subjectsA.check, {
      requestId,
      provider: 'postgres',
      connection: { params: PG, sealedCredentials: sealed },
    })
    expect(legit.ok).toBe(true)
  })

  it('(a) redirect in runs.start: refused in the reply, nothing connects to the fake server', async () => {
    const runId = `run-${suffix}-redirect`
    const sealed = sealPg({ operation: 'run', runId, nodeId: 'src' })
    const reply = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('redirect', runId, sealed, { ...PG, port: fake.port }),
    })
    expectRefused(reply, 'binding', '/pipeline/nodes/0/connection/sealedCredentials')
    // A TLS setting is a destination too: turning verification off is refused the same way.
    const tls = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('redirect', runId, sealed, { ...PG, tls: { mode: 'require' } }),
    })
    expectRefused(tls, 'binding', '/pipeline/nodes/0/connection/sealedCredentials')
    await nothingReachedTheFake()
  })

  it('(b, c) replay: the same runs.start twice, and again with a new run id, are refused', async () => {
    const runId = `run-${suffix}-replay`
    const message = {
      runId,
      pipeline: pgPipeline('replay', runId, sealPg({ operation: 'run', runId, nodeId: 'src' })),
    }
    const first = await request(subjectsA.runsStart, message)
    expect(first).toMatchObject({ accepted: true, runId })
    expect((await waitForTerminal(subjectsA, 'a', runId)).type).toBe('completed')
    expect(world.sinks.get('out-replay')?.size).toBe(7)

    const again = await request(subjectsA.runsStart, message)
    expectRefused(again, 'replay', '/pipeline/nodes/0/connection/sealedCredentials')
    expect(again.error.message).toMatch(/opened before \(replay\)/)

    const renamed = await request(subjectsA.runsStart, { ...message, runId: `${runId}-2` })
    expectRefused(renamed, 'binding', '/pipeline/nodes/0/connection/sealedCredentials')
    expect(renamed.error.message).toMatch(/runId differs/)

    // The same check request twice: the second is a replay.
    const requestId = `chk-${suffix}-replay`
    const check = {
      requestId,
      provider: 'postgres',
      connection: { params: PG, sealedCredentials: sealPg({ operation: 'check', requestId }) },
    }
    expect((await request(subjectsA.check, check)).ok).toBe(true)
    expectRefused(await request(subjectsA.check, check), 'replay', '/connection/sealedCredentials')
  })

  it('(d) an expired blob, and one valid for longer than the runtime allows, are refused', async () => {
    const runId = `run-${suffix}-expired`
    const expired = sealPg({ operation: 'run', runId, nodeId: 'src' }, PG, {
      now: Date.now() - 10 * 60_000,
      ttlMs: 60_000,
    })
    const reply = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('expired', runId, expired),
    })
    expectRefused(reply, 'expired', '/pipeline/nodes/0/connection/sealedCredentials')
    const forever = sealPg({ operation: 'run', runId, nodeId: 'src' }, PG, {
      ttlMs: 365 * 86_400_000,
    })
    const long = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('expired', runId, forever),
    })
    expectRefused(long, 'expiresAt', '/pipeline/nodes/0/connection/sealedCredentials')
  })

  it('(e) a blob sealed for another run is refused', async () => {
    const sealed = sealPg({ operation: 'run', runId: `run-${suffix}-other`, nodeId: 'src' })
    const runId = `run-${suffix}-mine`
    const reply = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('other-run', runId, sealed),
    })
    expectRefused(reply, 'binding', '/pipeline/nodes/0/connection/sealedCredentials')
  })

  it('(f) a blob for another node, another provider, or another operation is refused', async () => {
    const runId = `run-${suffix}-node`
    const otherNode = sealPg({ operation: 'run', runId, nodeId: 'dst' })
    expectRefused(
      await request(subjectsA.runsStart, { runId, pipeline: pgPipeline('node', runId, otherNode) }),
      'binding',
      '/pipeline/nodes/0/connection/sealedCredentials',
    )
    const otherProvider = sealCredentials(
      serverKey,
      a.publicKey,
      { user: 'postgres', password: PASSWORD },
      { operation: 'run', runId, nodeId: 'src' },
      { provider: 'mysql', paramsSchema: postgresProvider.definition.params, params: PG },
    )
    const reply = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('provider', runId, otherProvider),
    })
    expectRefused(reply, 'binding', '/pipeline/nodes/0/connection/sealedCredentials')
    expect(reply.error.message).toMatch(/provider differs/)
    // A blob sealed for a discover is not a check.
    const requestId = `chk-${suffix}-op`
    expectRefused(
      await request(subjectsA.check, {
        requestId,
        provider: 'postgres',
        connection: { params: PG, sealedCredentials: sealPg({ operation: 'discover', requestId }) },
      }),
      'binding',
      '/connection/sealedCredentials',
    )
    // A check with sealed credentials must name the request they are bound to.
    const missing = await request(subjectsA.check, {
      provider: 'postgres',
      connection: { params: PG, sealedCredentials: sealPg({ operation: 'check', requestId }) },
    })
    expect(missing.error.kind).toBe('validation')
    expect(missing.error.issues).toEqual([
      expect.objectContaining({ path: '/requestId', rule: 'required' }),
    ])
  })

  it('(g) replay across two instances sharing the nonce bucket: only one accepts', async () => {
    const runId = `run-${suffix}-group`
    const message = {
      runId,
      pipeline: pgPipeline('group', runId, sealPg({ operation: 'run', runId, nodeId: 'src' })),
    }
    const first = await request(subjectsA.runsStart, message)
    expect(first).toMatchObject({ accepted: true, instanceId: 'instance-a' })
    expectRefused(
      await request(subjectsB.runsStart, message),
      'replay',
      '/pipeline/nodes/0/connection/sealedCredentials',
    )
    // At the same time on both instances: exactly one wins the nonce.
    const requestId = `chk-${suffix}-race`
    const check = {
      requestId,
      provider: 'postgres',
      connection: { params: PG, sealedCredentials: sealPg({ operation: 'check', requestId }) },
    }
    const replies = await Promise.all([
      request(subjectsA.check, check),
      request(subjectsB.check, check),
    ])
    expect(replies.filter((r) => r.ok === true)).toHaveLength(1)
    expect(replies.filter((r) => r.error?.issues?.[0]?.rule === 'replay')).toHaveLength(1)
    await waitForTerminal(subjectsA, 'a', runId)
  })

  it("(h) a blob sealed to another runtime's key, or by another server, is refused in the reply", async () => {
    const runId = `run-${suffix}-key`
    const otherRuntime = createCurve()
    const wrongKey = sealPg(
      { operation: 'run', runId, nodeId: 'src' },
      PG,
      {},
      serverKey,
      otherRuntime.getPublicKey(),
    )
    const reply = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('key', runId, wrongKey),
    })
    expectRefused(reply, 'sealed', '/pipeline/nodes/0/connection/sealedCredentials')
    const forged = sealPg({ operation: 'run', runId, nodeId: 'src' }, PG, {}, createCurve())
    expectRefused(
      await request(subjectsA.runsStart, { runId, pipeline: pgPipeline('key', runId, forged) }),
      'sealed',
      '/pipeline/nodes/0/connection/sealedCredentials',
    )
  })

  it('an old unbound (v1) blob is refused, telling the server to seal v2', async () => {
    const runId = `run-${suffix}-v1`
    const v1 = Buffer.from(
      serverKey.seal(
        encoder.encode(JSON.stringify({ user: 'postgres', password: PASSWORD })),
        a.publicKey,
      ),
    ).toString('base64')
    const reply = await request(subjectsA.runsStart, {
      runId,
      pipeline: pgPipeline('v1', runId, v1),
    })
    expectRefused(reply, 'version', '/pipeline/nodes/0/connection/sealedCredentials')
    expect(reply.error.message).toMatch(/server must seal v2/)
    await nothingReachedTheFake()
  })

  it('never logs a password or a sealed blob', () => {
    const text = JSON.stringify(logger.lines)
    expect(logger.lines.length).toBeGreaterThan(0)
    expect(text).not.toContain(PASSWORD)
    expect(text).not.toContain(TOKEN)
    for (const sealed of sealedSeen) expect(text).not.toContain(sealed)
  })
})
