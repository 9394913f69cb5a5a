import {
  approximateSize,
  type ByteSource,
  type Data,
  describeItem,
  ProviderError,
  readBytes,
} from '@nvisy/provider-core'
import { DEFAULTS } from './defaults.js'

/**
 * A streamed blob body that is read into memory on first use and then shared: by every sink
 * of the source, by a retry, by a conversion. The source loop only wraps the body; the sink
 * reads it when it writes that item, at its own concurrency, so each object's download runs
 * right before its upload and overlaps the other items' transfers, and only the batches in
 * flight hold bytes.
 */
export class BufferedBody implements AsyncIterable<Uint8Array> {
  #source: ByteSource | undefined
  #bytes: Promise<Uint8Array> | undefined
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

  load(): Promise<Uint8Array> {
    if (!this.#bytes) {
      const source = this.#source!
      this.#source = undefined
      this.#bytes = readBytes(source, DEFAULTS.maxFanOutBlobBytes).then(
        (body) => {
          this.#size = body.byteLength
          return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
        },
        (error) => {
          throw this.#fail(error)
        },
      )
    }
    return this.#bytes
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    yield await this.load()
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
 */
export function prepareBody(providerId: string, data: Data, fanOut: number): Data {
  if (data.kind !== 'blob' || data.body instanceof Uint8Array) return data
  const small = data.size !== undefined && data.size <= DEFAULTS.bufferBlobBytes
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
