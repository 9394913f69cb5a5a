// Turning embedding items into Pinecone records, checked against the rules the service
// enforces, so one bad vector fails alone instead of failing its whole request.

import type { Data, JsonObject } from '@nvisy/provider-core'

export type RecordMetadataValue = string | number | boolean | string[]
export interface PineconeWireRecord {
  id: string
  values?: number[]
  sparseValues?: { indices: number[]; values: number[] }
  metadata?: Record<string, RecordMetadataValue>
}

/** The service's fixed limits (docs.pinecone.io, "Database limits"). */
export const PINECONE_LIMITS = {
  maxUpsertVectors: 1000,
  /** 2 MB per request; kept a little under, for the request envelope and headers. */
  maxUpsertBytes: 2_000_000 - 4096,
  maxFetchIds: 1000,
  maxDeleteIds: 1000,
  maxIdLength: 512,
  maxMetadataBytes: 40 * 1024,
} as const

/** The longest JSON text of one finite double (`-1.2345678901234567e-308`) plus a comma. */
const MAX_NUMBER_CHARS = 25
/** Sparse indices are uint32: at most 10 digits plus a comma. */
const MAX_INDEX_CHARS = 11

export interface PreparedRecord {
  record: PineconeWireRecord
  /** An upper bound of the record's JSON size in bytes. */
  bytes: number
}

export class RecordError extends Error {}

/** Byte-order ("C" collation) comparison of ids: the order `list` returns them in. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    // UTF-16 order is UTF-8 byte order except surrogates against U+E000..U+FFFF.
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys && (x >= 0xe000 || y >= 0xe000)) return xs ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length - b.length
}

export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0)
    throw new RecordError('id must be a non-empty string')
  let length = 0
  for (const _ of id) length++
  if (length > PINECONE_LIMITS.maxIdLength) {
    throw new RecordError(
      `id is ${length} characters; Pinecone allows at most ${PINECONE_LIMITS.maxIdLength}`,
    )
  }
  return id
}

function finiteNumbers(values: ArrayLike<number>, what: string): number[] {
  const out = new Array<number>(values.length)
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new RecordError(
        `${what}[${i}] is ${String(value)}; Pinecone accepts finite numbers only`,
      )
    }
    out[i] = value
  }
  return out
}

function checkMetadata(metadata: JsonObject): {
  metadata: Record<string, RecordMetadataValue>
  bytes: number
} {
  for (const [field, value] of Object.entries(metadata)) {
    if (typeof value === 'string' || typeof value === 'boolean') continue
    if (typeof value === 'number') {
      if (Number.isFinite(value)) continue
      throw new RecordError(`metadata.${field} is ${value}; Pinecone accepts finite numbers only`)
    }
    if (Array.isArray(value)) {
      const bad = value.findIndex((element) => typeof element !== 'string')
      if (bad < 0) continue
      throw new RecordError(
        `metadata.${field}[${bad}] is ${value[bad] === null ? 'null' : typeof value[bad]}; Pinecone accepts lists of strings only`,
      )
    }
    throw new RecordError(
      `metadata.${field} is ${value === null ? 'null' : typeof value}; Pinecone accepts a string, number, boolean or list of strings`,
    )
  }
  const bytes = Buffer.byteLength(JSON.stringify(metadata))
  if (bytes > PINECONE_LIMITS.maxMetadataBytes) {
    throw new RecordError(
      `metadata is ${bytes} bytes; Pinecone allows at most ${PINECONE_LIMITS.maxMetadataBytes} bytes per vector`,
    )
  }
  return { metadata: metadata as Record<string, RecordMetadataValue>, bytes }
}

/**
 * Check one item and build its wire record. `dimension` is the index's (undefined for a
 * sparse index, which takes no dense values). Throws RecordError naming what is wrong.
 */
export function prepareRecord(item: Data, dimension: number | undefined): PreparedRecord {
  if (item.kind !== 'embedding') {
    throw new RecordError(`Pinecone stores embedding items; got a ${item.kind} item`)
  }
  const id = checkId(item.id)
  const record: PineconeWireRecord = { id }
  let bytes = 64 + Buffer.byteLength(JSON.stringify(id))
  const dense = item.values as ArrayLike<number> | undefined
  const hasDense = dense !== undefined && dense !== null && dense.length > 0
  if (hasDense) {
    if (dimension === undefined) {
      throw new RecordError('the index is sparse: it takes sparse values only, not dense values')
    }
    if (dense.length !== dimension) {
      throw new RecordError(`vector has ${dense.length} dimensions; the index has ${dimension}`)
    }
    const values = finiteNumbers(dense, 'values')
    if (!values.some((value) => value !== 0)) {
      throw new RecordError('dense values are all zero; Pinecone needs at least one non-zero value')
    }
    record.values = values
    bytes += values.length * MAX_NUMBER_CHARS
  } else if (dimension !== undefined) {
    throw new RecordError(`vector has no dense values; the index has ${dimension} dimensions`)
  }
  if (item.sparse) {
    const { indices, values } = item.sparse
    if (!Array.isArray(indices) || !Array.isArray(values) || indices.length !== values.length) {
      throw new RecordError(
        `sparse indices and values must have the same length (${indices?.length} indices, ${values?.length} values)`,
      )
    }
    const seen = new Set<number>()
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
        throw new RecordError(`sparse index ${index} is not an unsigned 32-bit integer`)
      }
      if (seen.has(index)) throw new RecordError(`sparse index ${index} appears twice`)
      seen.add(index)
    }
    if (indices.length > 0) {
      record.sparseValues = {
        indices: [...indices],
        values: finiteNumbers(values, 'sparse.values'),
      }
      bytes += indices.length * (MAX_INDEX_CHARS + MAX_NUMBER_CHARS) + 40
    }
  }
  if (!record.values && !record.sparseValues) {
    throw new RecordError('vector has neither dense nor sparse values')
  }
  if (item.metadata !== undefined && item.metadata !== null) {
    if (typeof item.metadata !== 'object' || Array.isArray(item.metadata)) {
      throw new RecordError('metadata must be an object')
    }
    const checked = checkMetadata(item.metadata)
    record.metadata = checked.metadata
    bytes += checked.bytes + 16
  }
  return { record, bytes }
}
