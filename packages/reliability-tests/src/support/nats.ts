import { randomBytes } from 'node:crypto'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { hostPort, serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'

export const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
export const natsAddress = hostPort(NATS_URL, 4222)

export function natsSkipReason() {
  return serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
    tcpReachable(natsAddress.host, natsAddress.port),
  )
}

export function natsConnect(): Promise<NatsConnection> {
  return connect({ servers: NATS_URL, noAsyncTraces: true })
}

/** A JetStream stream with its own name and subjects, deleted by `destroy()`. */
export class TestStream {
  readonly suffix = randomBytes(4).toString('hex')
  readonly name = `NVISY_REL_${this.suffix}`
  readonly subject = `nvisyrel.${this.suffix}.out`
  nc!: NatsConnection
  jsm!: JetStreamManager

  async create() {
    this.nc = await natsConnect()
    this.jsm = await jetstreamManager(this.nc)
    // The default duplicate window, 2 minutes, covers the replay after a restart.
    await this.jsm.streams.add({ name: this.name, subjects: [`nvisyrel.${this.suffix}.>`] })
  }

  async count(): Promise<number> {
    return (await this.jsm.streams.info(this.name)).state.messages
  }

  /** Every message's Nats-Msg-Id, in stream order. */
  async ids(): Promise<string[]> {
    const js = jetstream(this.nc)
    const total = await this.count()
    const consumer = await js.consumers.get(this.name)
    const ids: string[] = []
    if (total === 0) return ids
    const messages = await consumer.consume({ max_messages: 1000 })
    for await (const message of messages) {
      ids.push(message.headers?.get('Nats-Msg-Id') ?? `<no id at seq ${message.seq}>`)
      if (message.info.pending === 0) break
    }
    messages.stop()
    return ids
  }

  async destroy() {
    if (!this.nc) return
    await this.jsm.streams.delete(this.name).catch(() => {})
    await this.nc.close()
  }
}
