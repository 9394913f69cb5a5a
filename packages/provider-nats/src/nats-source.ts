import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from '@nats-io/jetstream'
import { DeliverPolicy } from '@nats-io/jetstream'
import type { MsgHdrs } from '@nats-io/nats-core'
import type { MessageData, ReadItem } from '@nvisy/provider-core'
import type { NatsContext } from './nats-schemas.js'

/** Headers the server and client set for their own use; never passed through as data. */
export function isInternalHeader(name: string): boolean {
  return name.length >= 5 && name.slice(0, 5).toLowerCase() === 'nats-'
}

export const MSG_ID_HEADER = 'Nats-Msg-Id'

/** A stored message as a `message` data item. */
export function toMessageData(
  stream: string,
  seq: number,
  subject: string,
  payload: Uint8Array,
  msgHeaders: MsgHdrs | undefined,
  timestampNanos: bigint | undefined,
): MessageData {
  let id: string | undefined
  let headers: Record<string, string> | undefined
  if (msgHeaders) {
    for (const [name, values] of msgHeaders) {
      if (isInternalHeader(name)) {
        if (id === undefined && name.toLowerCase() === 'nats-msg-id' && values[0]) id = values[0]
        continue
      }
      headers ??= {}
      headers[name] = values.length === 1 ? values[0]! : values.join(', ')
    }
  }
  const data: MessageData = { kind: 'message', id: id ?? `${stream}:${seq}`, subject, payload }
  if (headers) data.headers = headers
  if (timestampNanos !== undefined) data.timestamp = new Date(Number(timestampNanos / 1_000_000n))
  return data
}

export function jsMsgToData(stream: string, m: JsMsg): MessageData {
  return toMessageData(stream, m.seq, m.subject, m.data, m.headers, m.timestampNanos)
}

export interface ReadStreamOptions {
  js: JetStreamClient
  jsm: JetStreamManager
  stream: string
  subject: string | undefined
  after: NatsContext | undefined
  signal: AbortSignal
  /** Messages the ordered consumer buffers ahead of the reader. */
  prefetch?: number
}

/**
 * Read a stream from a sequence through an ordered consumer (ephemeral, in memory, no acks,
 * recreated by the client on a gap). The read is finite: it stops at the stream's last
 * sequence as of the start of the read, or earlier when the consumer reports nothing pending.
 */
export async function* readStream(
  options: ReadStreamOptions,
): AsyncGenerator<ReadItem<NatsContext>> {
  const { js, jsm, stream, subject, signal } = options
  const startSeq = (options.after?.seq ?? 0) + 1
  const info = await jsm.streams.info(stream)
  const lastSeq = info.state.last_seq
  if (lastSeq < startSeq || info.state.messages === 0 || signal.aborted) return

  const consumer: Consumer = await js.consumers.get(stream, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: startSeq,
    ...(subject === undefined ? {} : { filter_subjects: subject }),
  })
  let messages: ConsumerMessages | undefined
  let released = false
  // Runs on abort as well as on return: a consumer of an aborted read is removed at once,
  // even when the reader never resumes this generator (it is suspended at a yield).
  const release = () => {
    if (released) return
    released = true
    messages?.stop()
    consumer.delete().catch(() => {})
  }
  signal.addEventListener('abort', release, { once: true })
  try {
    const created = await consumer.info(true)
    if (created.num_pending === 0 || signal.aborted) return
    const prefetch = Math.max(1, Math.min(options.prefetch ?? 1024, created.num_pending))
    messages = await consumer.consume({ max_messages: prefetch })
    if (signal.aborted) return
    for await (const m of messages) {
      const seq = m.seq
      if (seq > lastSeq) return
      yield { data: jsMsgToData(stream, m), context: { seq } }
      if (seq >= lastSeq || m.info.pending === 0 || signal.aborted) return
    }
  } finally {
    signal.removeEventListener('abort', release)
    release()
  }
}
