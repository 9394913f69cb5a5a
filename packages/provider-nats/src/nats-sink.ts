import type { JetStreamClient, JetStreamManager, JetStreamPublishOptions } from '@nats-io/jetstream'
import { headers as createHeaders } from '@nats-io/nats-core'
import {
  abortReason,
  describeItem,
  type ErrorKind,
  type MessageData,
  ProviderError,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import { classifyNatsError, isNoResponders } from './nats-errors.js'
import { DEFAULT_MAX_IN_FLIGHT, type NatsSinkStream } from './nats-schemas.js'
import { isInternalHeader } from './nats-source.js'

const MESSAGE_KINDS = new Set<ErrorKind>(['data', 'config', 'not_found'])

export interface WriteMessagesOptions {
  js: JetStreamClient
  jsm: () => Promise<JetStreamManager>
  settings: NatsSinkStream
  batch: readonly MessageData[]
  signal: AbortSignal
  /** The connection's window for `settings.maxInFlight`: shared by concurrent writes. */
  window?: PublishWindow
}

/**
 * Unacknowledged publishes on one connection, at most `size` at a time, shared by every
 * batch written through it at once: with two batches in flight the window stays full across
 * batch boundaries (one batch drains while the next publishes) and never exceeds `size`.
 */
export class PublishWindow {
  #free: number
  readonly #waiting: { owner: object; resolve: (granted: boolean) => void }[] = []

  constructor(readonly size: number) {
    this.#free = size
  }

  /** Take a slot now if one is free. */
  tryAcquire(): boolean {
    if (this.#free === 0) return false
    this.#free--
    return true
  }

  /** Wait for a slot: true once granted, false when `cancel(owner)` gave up first. */
  acquire(owner: object): Promise<boolean> {
    return new Promise((resolve) => this.#waiting.push({ owner, resolve }))
  }

  release(): void {
    const next = this.#waiting.shift()
    if (next) next.resolve(true)
    else this.#free++
  }

  /** Stop every wait of `owner` (its write was aborted). */
  cancel(owner: object): void {
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      if (this.#waiting[i]!.owner !== owner) continue
      this.#waiting.splice(i, 1)[0]!.resolve(false)
    }
  }

  /** Slots in use. */
  get inFlight(): number {
    return this.size - this.#free
  }
}

function dataError(
  index: number,
  item: MessageData | undefined,
  message: string,
  cause?: unknown,
  code?: string,
): WriteFailure {
  const what = item ? describeItem(item) : `item ${index}`
  return {
    index,
    error: new ProviderError({ kind: 'data', message: `${what}: ${message}`, cause, code }),
  }
}

/**
 * Publish a batch with a bounded window of unacknowledged publishes, awaiting every ack.
 * The item id travels as `Nats-Msg-Id`, so a replay inside the stream's duplicate window is
 * dropped by the server (an ack marked duplicate counts as written). A message refused on
 * its own (too large, no stream for its subject) fails alone; a connection-level failure
 * (timeout, closed connection, auth) fails the batch once the window has drained.
 */
export async function writeMessages(options: WriteMessagesOptions): Promise<WriteResult> {
  const { js, settings, batch, signal } = options
  const window = options.window ?? new PublishWindow(settings.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)
  const failed: WriteFailure[] = []
  const noResponders: { index: number; subject: string; cause: unknown }[] = []
  let written = 0
  let batchError: unknown
  // This batch's own publishes not acknowledged yet: it returns once they are.
  let mine = 0
  let drained: (() => void) | undefined
  const settle = () => {
    window.release()
    if (--mine === 0) drained?.()
  }
  // An abort ends this batch's waits for a slot; it then stops issuing and drains its publishes.
  const owner = {}
  const onAbort = () => window.cancel(owner)
  signal.addEventListener('abort', onAbort, { once: true })

  for (let index = 0; index < batch.length; index++) {
    if (signal.aborted || batchError !== undefined) break
    const item = batch[index]!
    const subject = settings.subject ?? item.subject
    if (!subject) {
      failed.push(dataError(index, item, 'has no subject and the sink settings name none'))
      continue
    }
    if (!(item.payload instanceof Uint8Array)) {
      failed.push(dataError(index, item, 'payload must be a Uint8Array'))
      continue
    }
    if (typeof item.id !== 'string' || item.id.length === 0) {
      failed.push(dataError(index, item, 'needs a non-empty id (it is the Nats-Msg-Id dedupe key)'))
      continue
    }
    const publishOptions: Partial<JetStreamPublishOptions> = { msgID: item.id }
    if (settings.stream) publishOptions.expect = { streamName: settings.stream }
    if (item.headers) {
      try {
        let h: ReturnType<typeof createHeaders> | undefined
        for (const name in item.headers) {
          if (isInternalHeader(name)) continue
          h ??= createHeaders()
          h.set(name, String(item.headers[name]))
        }
        if (h) publishOptions.headers = h
      } catch (error) {
        failed.push(
          dataError(
            index,
            item,
            `invalid header: ${(error as Error).message}`,
            error,
            'INVALID_HEADER',
          ),
        )
        continue
      }
    }
    if (!window.tryAcquire() && !(await window.acquire(owner))) break
    if (signal.aborted) {
      window.release()
      break
    }
    mine++
    let pending: Promise<unknown>
    try {
      pending = js.publish(subject, item.payload, publishOptions)
    } catch (error) {
      pending = Promise.reject(error)
    }
    const at = index
    pending.then(
      () => {
        written++
        settle()
      },
      (error: unknown) => {
        if (isNoResponders(error)) noResponders.push({ index: at, subject, cause: error })
        else {
          const classified = classifyNatsError(error)
          // Refusals of this message (too large, wrong stream...) fail it alone; anything
          // else (timeout, closed connection, auth) fails the batch.
          if (classified && MESSAGE_KINDS.has(classified.kind)) {
            failed.push({
              index: at,
              error: new ProviderError({
                kind: classified.kind,
                message: `${describeItem(batch[at]!)}: ${classified.message}`,
                code: classified.code,
                cause: error,
              }),
            })
          } else batchError ??= error
        }
        settle()
      },
    )
  }
  signal.removeEventListener('abort', onAbort)
  // Publishes already sent are stored by the server anyway: wait for their acks (bounded by
  // the ack timeout) so that nothing is left running behind the caller.
  if (mine > 0)
    await new Promise<void>((resolve) => {
      drained = resolve
    })
  if (signal.aborted) throw abortReason(signal)
  if (batchError !== undefined) throw batchError

  if (noResponders.length > 0) {
    // 503 "no responders" on a publish: either no stream captures the subject (a setup
    // problem: `config`, that message alone) or the capturing stream has no leader right
    // now (`transient`: the whole batch is retried; Nats-Msg-Id makes that harmless).
    const jsm = await options.jsm()
    const captured = new Map<string, string | undefined>()
    for (const { index, subject, cause } of noResponders) {
      if (!captured.has(subject)) {
        captured.set(subject, await jsm.streams.find(subject).catch(() => undefined))
      }
      const stream = captured.get(subject)
      if (stream !== undefined) {
        throw new ProviderError({
          kind: 'transient',
          message: `stream ${stream} did not answer a publish to ${subject} (no responders: no stream leader?)`,
          code: 'NO_RESPONDERS',
          cause,
        })
      }
      failed.push({
        index,
        error: new ProviderError({
          kind: settings.subject ? 'config' : 'data',
          message: `${describeItem(batch[index]!)}: no JetStream stream captures subject ${subject} (no responders)`,
          code: 'NO_STREAM_FOR_SUBJECT',
          cause,
        }),
      })
    }
  }
  failed.sort((a, b) => a.index - b.index)
  return { written, failed }
}
