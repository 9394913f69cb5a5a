import {
  approximateSize,
  type ByteSource,
  type Data,
  describeItem,
  isReplayableBody,
  ProviderError,
} from '@nvisy/provider-core'
import { DEFAULTS } from './defaults.js'

/**
 * A body's chunks as read, refusing bodies larger than `maxBytes` (the message of
 * `readBytes`). They are kept as they came, not joined: a sink that streams them sends them
 * as they are, one that needs one buffer joins them itself.
 */
async function readChunks(
  source: ByteSource,
  maxBytes: number,
): Promise<{ chunks: Uint8Array[]; size: number }> {
  const tooLarge = () =>
    new RangeError(`body is larger than ${maxBytes} bytes; stream it instead of reading it whole`)
  if (source instanceof Uint8Array) {
    if (source.byteLength > maxBytes) throw tooLarge()
    return { chunks: [source], size: source.byteLength }
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of source) {
    size += chunk.byteLength
    if (size > maxBytes) throw tooLarge()
    chunks.push(chunk)
  }
  return { chunks, size }
}

/**
 * A streamed blob body that is read into memory on first use and then shared: by every sink
 * of the source, by a retry, by a conversion. The source loop only wraps the body; the sink
 * reads it when it writes that item, at its own concurrency, so each object's download runs
 * right before its upload and overlaps the other items' transfers, and only the batches in
 * flight hold bytes. The chunks are kept as read (not copied into one buffer) and each
 * iteration yields them again.
 */
export class BufferedBody implements AsyncIterable<Uint8Array> {
  #source: ByteSource | undefined
  #chunks: Promise<Uint8Array[]> | undefined
  #size: number | undefined
  readonly #fail: (error: unknown) => ProviderError

  constructor(source: ByteSource, fail: (error: unknown) => ProviderError) {
    this.#source = source
    this.#fail = fail
  }

  /** The body's length once it has been read. */
  get size(): number | undefined {
    return this.#size
  }

  load(): Promise<Uint8Array[]> {
    if (!this.#chunks) {
      const source = this.#source!
      this.#source = undefined
      this.#chunks = readChunks(source, DEFAULTS.maxFanOutBlobBytes).then(
        ({ chunks, size }) => {
          this.#size = size
          return chunks
        },
        (error) => {
          throw this.#fail(error)
        },
      )
    }
    return this.#chunks
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    yield* await this.load()
  }
}

/** An item's bytes for batching: a buffered body not read yet counts its declared size, or the buffering threshold when it has none. */
export function sizeOf(data: Data): number {
  if (data.kind === 'blob' && data.body instanceof BufferedBody)
    return data.size ?? data.body.size ?? DEFAULTS.bufferBlobBytes
  return approximateSize(data)
}

/**
 * Streamed blob bodies that may be sent more than once (a second sink, a retry) are wrapped
 * to be read into memory by their first consumer; larger single-sink bodies stream once.
 * Replayable bodies (`REPLAYABLE_BODY`) are passed as they are, but for a small one going to
 * several sinks.
 */
export function prepareBody(providerId: string, data: Data, fanOut: number): Data {
  if (data.kind !== 'blob' || data.body instanceof Uint8Array) return data
  const small = data.size !== undefined && data.size <= DEFAULTS.bufferBlobBytes
  // A body that reads the same bytes again at each iteration (an object store's GET pinned to
  // the listed version) needs no copy in memory for a retry, and the sink can stream it from
  // the source into the store. A small one going to several sinks is still read once and
  // shared: reading it again per sink would cost a request and its bytes each time.
  if (isReplayableBody(data.body) && (fanOut <= 1 || !small)) return data
  if (!small && fanOut <= 1) {
    // Too large to buffer: the body streams once. A retry must not send a drained stream as an empty file.
    const body = data.body
    let sent = false
    const once: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        if (sent) {
          throw new ProviderError({
            kind: 'internal',
            operation: 'write',
            message: `${describeItem(data)} streams (larger than ${DEFAULTS.bufferBlobBytes} bytes) and was already sent once; it cannot be resent by a retry`,
          })
        }
        sent = true
        return body[Symbol.asyncIterator]()
      },
    }
    return { ...data, body: once }
  }
  const body = new BufferedBody(
    data.body,
    (error) =>
      new ProviderError({
        kind: 'data',
        providerId,
        operation: 'read',
        message: `${describeItem(data)} could not be buffered to send to ${fanOut} sink${fanOut === 1 ? '' : 's'}: ${(error as Error).message}`,
        cause: error,
      }),
  )
  return { ...data, body }
}
