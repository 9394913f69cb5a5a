import {
  chunkBy,
  type Data,
  mapConcurrent,
  ProviderError,
  raceAbort,
  throwIfAborted,
  toProviderError,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import type { Index } from '@pinecone-database/pinecone'
import type { IndexInfo } from './pinecone-client.js'
import { classifyPineconeError } from './pinecone-errors.js'
import {
  checkId,
  PINECONE_LIMITS,
  type PreparedRecord,
  prepareRecord,
  RecordError,
} from './pinecone-records.js'
import type { PineconeSinkStream } from './pinecone-schemas.js'

const DEFAULT_CONCURRENCY = 4
/** `{"vectors":[` ... `],"namespace":""}` */
const ENVELOPE_BYTES = 64

export interface SinkTarget {
  info(): Promise<IndexInfo>
  index(namespace: string): Index
  namespace(stream: PineconeSinkStream): string
  /** Set once the dimension check before the first write has passed. */
  dimensionChecked: boolean
}

interface Pending {
  position: number
  prepared: PreparedRecord
}

function dataFailure(
  position: number,
  id: string | undefined,
  message: string,
  cause?: unknown,
): WriteFailure {
  return {
    index: position,
    error: new ProviderError({
      kind: 'data',
      operation: 'write',
      message: id === undefined ? message : `vector ${JSON.stringify(id.slice(0, 80))}: ${message}`,
      cause,
    }),
  }
}

/**
 * The dimension check before the first write: a declared `dimension` that differs from the
 * index, or a first batch whose vectors all share one wrong length, is a configuration
 * error (the wrong embedding model or index), raised before anything is written.
 */
function checkDimension(stream: PineconeSinkStream, info: IndexInfo, batch: readonly Data[]): void {
  const indexDimension = info.dimension
  const where = info.name ? `index ${info.name}` : 'the index'
  if (stream.dimension !== undefined) {
    if (indexDimension === undefined) {
      throw new ProviderError({
        kind: 'config',
        operation: 'write',
        message: `/stream/dimension is ${stream.dimension} but ${where} is a sparse index (no dense dimension)`,
      })
    }
    if (stream.dimension !== indexDimension) {
      throw new ProviderError({
        kind: 'config',
        operation: 'write',
        message: `/stream/dimension is ${stream.dimension} but ${where} has dimension ${indexDimension}`,
      })
    }
    return
  }
  if (indexDimension === undefined) return
  const lengths = new Set<number>()
  for (const item of batch) {
    if (item.kind === 'embedding' && item.values && item.values.length > 0)
      lengths.add(item.values.length)
  }
  if (lengths.size === 1 && !lengths.has(indexDimension)) {
    const [length] = lengths
    throw new ProviderError({
      kind: 'config',
      operation: 'write',
      message: `every vector of the first batch has ${length} dimensions but ${where} has dimension ${indexDimension}: check the embedding model and the index`,
    })
  }
}

export async function writeVectors(
  target: SinkTarget,
  stream: PineconeSinkStream,
  batch: readonly Data[],
  signal: AbortSignal,
): Promise<WriteResult> {
  const info = await raceAbort(target.info(), signal)
  if (!target.dimensionChecked) {
    checkDimension(stream, info, batch)
    target.dimensionChecked = true
  }
  const failed: WriteFailure[] = []
  const pending: Pending[] = []
  batch.forEach((item, position) => {
    try {
      pending.push({ position, prepared: prepareRecord(item, info.dimension) })
    } catch (error) {
      if (!(error instanceof RecordError)) throw error
      const id = item.kind === 'embedding' && typeof item.id === 'string' ? item.id : undefined
      failed.push(dataFailure(position, id, error.message))
    }
  })
  const index = target.index(target.namespace(stream))
  const maxItems = Math.min(
    stream.maxBatchVectors ?? PINECONE_LIMITS.maxUpsertVectors,
    PINECONE_LIMITS.maxUpsertVectors,
  )
  const namespaceBytes = Buffer.byteLength(JSON.stringify(target.namespace(stream)))
  const chunks = chunkBy(pending, {
    maxItems,
    maxBytes: PINECONE_LIMITS.maxUpsertBytes - ENVELOPE_BYTES - namespaceBytes,
    sizeOf: (entry) => entry.prepared.bytes + 1,
  })
  let written = 0

  // A request the service refuses as a whole (400/413) is split in halves until the vector
  // it refuses is alone, so the rest of the chunk is still written.
  const upsert = async (chunk: Pending[]): Promise<void> => {
    throwIfAborted(signal)
    try {
      await raceAbort(
        index.upsert({ records: chunk.map((entry) => entry.prepared.record) as never }),
        signal,
      )
      written += chunk.length
    } catch (error) {
      const classified = toProviderError(error, {
        operation: 'write',
        classify: classifyPineconeError,
      })
      if (classified.kind !== 'data') throw classified
      if (chunk.length === 1) {
        const entry = chunk[0]!
        failed.push(
          dataFailure(entry.position, entry.prepared.record.id, classified.message, error),
        )
        return
      }
      const middle = chunk.length >>> 1
      await upsert(chunk.slice(0, middle))
      await upsert(chunk.slice(middle))
    }
  }
  await mapConcurrent(chunks, stream.concurrency ?? DEFAULT_CONCURRENCY, upsert)
  failed.sort((a, b) => a.index - b.index)
  return { written, failed }
}

export async function deleteVectors(
  target: SinkTarget,
  stream: PineconeSinkStream,
  ids: readonly string[],
  signal: AbortSignal,
): Promise<WriteResult> {
  const failed: WriteFailure[] = []
  const valid: string[] = []
  ids.forEach((id, position) => {
    try {
      valid.push(checkId(id))
    } catch (error) {
      failed.push(
        dataFailure(position, typeof id === 'string' ? id : undefined, (error as Error).message),
      )
    }
  })
  const index = target.index(target.namespace(stream))
  let written = 0
  for (const chunk of chunkBy(valid, { maxItems: PINECONE_LIMITS.maxDeleteIds })) {
    throwIfAborted(signal)
    await raceAbort(index.deleteMany({ ids: chunk }), signal)
    written += chunk.length
  }
  return { written, failed }
}
