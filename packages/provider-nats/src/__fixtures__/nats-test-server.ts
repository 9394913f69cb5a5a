// Test helpers shared by the integration tests (excluded from the build).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { jetstream, jetstreamManager, type StreamConfig } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import { connect } from '@nats-io/transport-node'
import { freePort, hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'

export { freePort }

export const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
export const NATS_SERVER_BINARY = process.env.NVISY_NATS_SERVER_BIN ?? '/usr/sbin/nats-server'

export function natsSkipReason(): Promise<string | false> {
  const { host, port } = hostPort(NATS_URL, 4222)
  return serviceSkipReason('NATS with JetStream', NATS_URL, () => tcpReachable(host, port))
}

export function randomSuffix(): string {
  return randomBytes(5).toString('hex')
}

export function testConnection(): Promise<NatsConnection> {
  return connect({ servers: NATS_URL, noAsyncTraces: true })
}

/** A stream with a random name over `nvisy.test.<rand>.>`, recreated by `reset()`. */
export class TestStream {
  readonly suffix = randomSuffix()
  readonly name = `NVISY_TEST_${this.suffix.toUpperCase()}`
  readonly prefix = `nvisy.test.${this.suffix}`
  private nc: NatsConnection | undefined

  constructor(private readonly extra: Partial<StreamConfig> = {}) {}

  async connection(): Promise<NatsConnection> {
    this.nc ??= await testConnection()
    return this.nc
  }

  async reset(): Promise<void> {
    const jsm = await jetstreamManager(await this.connection())
    await jsm.streams.delete(this.name).catch(() => false)
    await jsm.streams.add({ name: this.name, subjects: [`${this.prefix}.>`], ...this.extra })
  }

  async publish(subject: string, payload: Uint8Array | string, msgID?: string): Promise<number> {
    const js = jetstream(await this.connection())
    const ack = await js.publish(subject, payload, msgID ? { msgID } : {})
    return ack.seq
  }

  /** Every stored message on subjects matching `filter`, in stream order, through a raw ordered consumer. */
  async stored(
    filter: string,
  ): Promise<{ seq: number; subject: string; data: Uint8Array; msgId: string | undefined }[]> {
    const nc = await this.connection()
    const jsm = await jetstreamManager(nc)
    const info = await jsm.streams.info(this.name)
    if (info.state.messages === 0) return []
    const consumer = await jetstream(nc).consumers.get(this.name, { filter_subjects: filter })
    const out: { seq: number; subject: string; data: Uint8Array; msgId: string | undefined }[] = []
    const ci = await consumer.info(true)
    if (ci.num_pending === 0) return out
    const messages = await consumer.consume({ max_messages: 1000 })
    for await (const m of messages) {
      out.push({
        seq: m.seq,
        subject: m.subject,
        data: m.data,
        msgId: m.headers?.get('Nats-Msg-Id') || undefined,
      })
      if (m.info.pending === 0) break
    }
    await consumer.delete().catch(() => {})
    return out
  }

  async destroy(): Promise<void> {
    if (!this.nc) return
    const jsm = await jetstreamManager(this.nc)
    await jsm.streams.delete(this.name).catch(() => false)
    await this.nc.close()
    this.nc = undefined
  }
}

/** A nats-server child process that requires user `u` with password `p`. */
export async function startAuthServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    NATS_SERVER_BINARY,
    ['-a', '127.0.0.1', '-p', String(port), '--user', 'u', '--pass', 'p'],
    {
      stdio: 'ignore',
    },
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
