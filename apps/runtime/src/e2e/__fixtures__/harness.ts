// End-to-end helpers: a test client that plays the Rust server over the real NATS server
// (catalog, sealed credentials, runs.start, cancel, run events from JetStream, checkpoints
// from KV), the services' addresses, and unique names per test file.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { createCurve, type KeyPair } from '@nats-io/nkeys'
import { type ConnectionOptions, connect, type NatsConnection } from '@nats-io/transport-node'
import {
  type CheckpointValue,
  CheckpointValueSchema,
  createSubjects,
  ErrorReplySchema,
  type Pipeline,
  ProvidersReplySchema,
  type RunEvent,
  RunsStartReplySchema,
  type Subjects,
  validateMessage,
  validateRunEvent,
} from '@nvisy/protocol'
import type { TSchema } from '@nvisy/provider-core'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { expect } from 'vitest'
import type { DispatcherNaming } from '../../nats/dispatcher.js'
import { type CredentialScope, sealCredentials } from '../../nats/index.js'

const runtimeDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const repoRoot = join(runtimeDir, '..', '..')

/**
 * Build the runtime and the PostgreSQL provider (turbo caches an unchanged build) for tests
 * that run them from dist/ in another process. A failed build is fine when dist/ is there.
 */
export async function buildRuntimeDist(): Promise<void> {
  try {
    await promisify(execFile)(
      'pnpm',
      [
        'turbo',
        'run',
        'build',
        '--filter=@nvisy/runtime...',
        '--filter=@nvisy/provider-postgres...',
        '--output-logs=errors-only',
      ],
      { cwd: repoRoot, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
    )
  } catch (error) {
    const built =
      existsSync(join(runtimeDir, 'dist', 'cli.js')) &&
      existsSync(join(repoRoot, 'packages', 'provider-postgres', 'dist', 'index.js'))
    if (!built) throw error
    console.warn(`build failed, using the dist/ already there: ${(error as Error).message}`)
  }
}

export const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
export const PG = {
  host: process.env.NVISY_TEST_POSTGRES_HOST ?? '127.0.0.1',
  port: Number(process.env.NVISY_TEST_POSTGRES_PORT ?? 5432),
  database: process.env.NVISY_TEST_POSTGRES_DB ?? 'test',
  user: process.env.NVISY_TEST_POSTGRES_USER ?? 'postgres',
}
export const S3 = {
  endpoint: process.env.NVISY_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480',
  accessKeyId: process.env.NVISY_TEST_S3_ACCESS_KEY_ID ?? 'AKIALOCALS3TEST00001',
  secretAccessKey:
    process.env.NVISY_TEST_S3_SECRET_ACCESS_KEY ?? 'localS3testSecretKey0000000000000000001',
  region: process.env.NVISY_TEST_S3_REGION ?? 'us-east-1',
}

export async function natsSkip(): Promise<string | false> {
  const url = new URL(NATS_URL)
  return serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
    tcpReachable(url.hostname, Number(url.port || 4222)),
  )
}

export async function postgresSkip(): Promise<string | false> {
  return serviceSkipReason('PostgreSQL', `${PG.host}:${PG.port}`, () =>
    tcpReachable(PG.host, PG.port),
  )
}

export async function s3Skip(): Promise<string | false> {
  return serviceSkipReason('S3 server', S3.endpoint, async () => {
    const response = await fetch(S3.endpoint, { signal: AbortSignal.timeout(3000) })
    await response.arrayBuffer()
    return true
  })
}

/** Subjects, stream, bucket and queue group of one test file. */
export function uniqueNaming(label: string): DispatcherNaming {
  const suffix = `${label}${randomBytes(4).toString('hex')}`
  return {
    prefix: `nvisye2e.${suffix}.v1`,
    eventsStream: `NVISY_E2E_EVENTS_${suffix}`,
    checkpointBucket: `nvisy-e2e-checkpoints-${suffix}`,
    queueGroup: `nvisy-runtime-${suffix}`,
    nonceBucket: `nvisy-e2e-nonces-${suffix}`,
    workStream: `NVISY_E2E_WORK_${suffix}`,
    workConsumer: `nvisy-e2e-workers-${suffix}`,
    runsBucket: `nvisy-e2e-runs-${suffix}`,
  }
}

export function expectValid(schema: TSchema, value: unknown, what = 'message'): void {
  const result = validateMessage(schema, value)
  expect(result.ok ? [] : result.issues, what).toEqual([])
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const TERMINAL = new Set(['completed', 'failed', 'cancelled'])

/** The Rust server's side of the protocol, in TypeScript. */
export class ServerClient {
  readonly key: KeyPair = createCurve()
  readonly subjects: Subjects
  runtimePublicKey = ''
  /** Params JSON Schemas from the catalog: the server binds credentials with their marks. */
  readonly paramsSchemas = new Map<string, Record<string, unknown>>()
  readonly #pending = new Map<string, { credentials: Record<string, unknown>; key: KeyPair }>()
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly naming: DispatcherNaming,
  ) {
    this.subjects = createSubjects(naming.prefix)
  }

  static async connect(
    naming: DispatcherNaming,
    options: Partial<ConnectionOptions> = {},
  ): Promise<ServerClient> {
    const nc = await connect({
      servers: NATS_URL,
      noAsyncTraces: true,
      name: 'nvisy e2e server',
      ...options,
    })
    return new ServerClient(nc, jetstream(nc), naming)
  }

  get publicKey(): string {
    return this.key.getPublicKey()
  }

  async request(subject: string, body: unknown, timeout = 10_000): Promise<any> {
    const payload = typeof body === 'string' ? body : JSON.stringify(this.bind(subject, body))
    const reply = await this.nc.request(subject, encoder.encode(payload), { timeout })
    return JSON.parse(decoder.decode(reply.data))
  }

  /** An error reply: checked against the protocol schema. */
  async requestError(subject: string, body: unknown): Promise<any> {
    const reply = await this.request(subject, body)
    expectValid(ErrorReplySchema, reply, `error reply on ${subject}`)
    return reply.error
  }

  /** The catalog; remembers the runtime's public key to seal credentials to. */
  async catalog(): Promise<any> {
    const reply = await this.request(this.subjects.providers, {})
    expectValid(ProvidersReplySchema, reply, 'providers reply')
    this.runtimePublicKey = reply.runtime.publicKey
    for (const provider of reply.providers)
      this.paramsSchemas.set(provider.id, provider.schemas.params)
    return reply
  }

  /**
   * Credentials to seal when they are sent: a placeholder that `request` replaces with a
   * blob bound to the run node (runs.start) or request (check/discover) it is sent in, as
   * the server seals a fresh blob for every use.
   */
  seal(credentials: Record<string, unknown>, key: KeyPair = this.key): string {
    expect(this.runtimePublicKey, 'fetch the catalog first').not.toBe('')
    const placeholder = `PendingSeal${this.#pending.size}`
    this.#pending.set(placeholder, { credentials, key })
    return placeholder
  }

  #sealFor(sealed: unknown, scope: CredentialScope, provider: string, params: unknown): unknown {
    const pending = typeof sealed === 'string' ? this.#pending.get(sealed) : undefined
    if (!pending) return sealed
    const paramsSchema = this.paramsSchemas.get(provider) ?? { type: 'object' }
    return sealCredentials(pending.key, this.runtimePublicKey, pending.credentials, scope, {
      provider,
      paramsSchema,
      params,
    })
  }

  /** The request body with each pending credential sealed for its use. */
  bind(subject: string, body: unknown): unknown {
    if (typeof body !== 'object' || body === null) return body
    const value = body as Record<string, any>
    if (typeof value.runId === 'string' && Array.isArray(value.pipeline?.nodes)) {
      return {
        ...value,
        pipeline: {
          ...value.pipeline,
          nodes: value.pipeline.nodes.map((node: any) => ({
            ...node,
            connection: node.connection && {
              ...node.connection,
              sealedCredentials: this.#sealFor(
                node.connection.sealedCredentials,
                { operation: 'run', runId: value.runId, nodeId: node.id },
                node.provider,
                node.connection.params,
              ),
            },
          })),
        },
      }
    }
    const operation =
      subject === this.subjects.check
        ? 'check'
        : subject === this.subjects.discover
          ? 'discover'
          : undefined
    if (operation && value.connection && typeof value.provider === 'string') {
      const requestId = value.requestId ?? `req-${randomBytes(8).toString('hex')}`
      return {
        ...value,
        requestId,
        connection: {
          ...value.connection,
          sealedCredentials: this.#sealFor(
            value.connection.sealedCredentials,
            {
              operation,
              requestId,
              ...(value.connection.connectionId === undefined
                ? {}
                : { connectionId: value.connection.connectionId }),
            },
            value.provider,
            value.connection.params,
          ),
        },
      }
    }
    return body
  }

  async startRun(
    runId: string,
    pipeline: Pipeline,
    extra: Record<string, unknown> = {},
  ): Promise<{ accepted: true; runId: string; instanceId: string }> {
    const reply = await this.request(this.subjects.runsStart, { runId, pipeline, ...extra })
    expectValid(RunsStartReplySchema, reply, `runs.start reply ${JSON.stringify(reply)}`)
    return reply
  }

  /**
   * Every event of a run from JetStream, from the first, until its terminal event (or
   * `until` says stop). Each is validated against the protocol; seq counts from 0.
   */
  async runEvents(
    runId: string,
    options: {
      timeoutMs?: number
      until?: (event: RunEvent) => boolean
      /** A partitioned run: several instances publish its events, each numbering its own from 0. */
      partitioned?: boolean
    } = {},
  ): Promise<RunEvent[]> {
    const consumer = await this.js.consumers.get(this.naming.eventsStream, {
      filter_subjects: this.subjects.runEvents(runId),
    })
    const messages = await consumer.consume()
    const events: RunEvent[] = []
    const timer = setTimeout(() => messages.stop(), options.timeoutMs ?? 60_000)
    try {
      for await (const message of messages) {
        const event = message.json<RunEvent>()
        events.push(event)
        if (TERMINAL.has(event.type) || options.until?.(event)) break
      }
    } finally {
      clearTimeout(timer)
      messages.stop()
    }
    for (const event of events) {
      const checked = validateRunEvent(event)
      expect(checked.ok ? [] : checked.issues, `event ${event.type} #${event.seq}`).toEqual([])
      expect(event.runId).toBe(runId)
    }
    if (!options.partitioned) expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i))
    return events
  }

  /** The stored checkpoint of a source node, checked against the protocol. */
  async checkpoint(pipelineId: string, nodeId: string): Promise<CheckpointValue | undefined> {
    const kv = await new Kvm(this.js).open(this.naming.checkpointBucket)
    const entry = await kv.get(`${pipelineId}.${nodeId}`)
    if (!entry || entry.operation !== 'PUT') return undefined
    const value = entry.json<CheckpointValue>()
    expectValid(CheckpointValueSchema, value, 'checkpoint value')
    return value
  }

  /** Delete this file's stream and bucket, then close. */
  async cleanup(): Promise<void> {
    const jsm = await jetstreamManager(this.nc)
    await jsm.streams.delete(this.naming.eventsStream).catch(() => {})
    await jsm.streams.delete(`KV_${this.naming.checkpointBucket}`).catch(() => {})
    if (this.naming.nonceBucket)
      await jsm.streams.delete(`KV_${this.naming.nonceBucket}`).catch(() => {})
    if (this.naming.workStream) await jsm.streams.delete(this.naming.workStream).catch(() => {})
    if (this.naming.runsBucket)
      await jsm.streams.delete(`KV_${this.naming.runsBucket}`).catch(() => {})
    await this.nc.close()
  }
}

export function terminal(events: RunEvent[]): RunEvent {
  const last = events.at(-1)
  expect(last && TERMINAL.has(last.type), `terminal event, got ${JSON.stringify(last)}`).toBe(true)
  return last!
}

/** md5 and count over a table's rows in id order, to compare two tables exactly. */
export const TABLE_DIGEST = (table: string) =>
  `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY id), '')) AS md5 FROM ${table} t`
