// In-memory Pinecone indexes: namespaces of records, validated as the service validates
// them. Dense values are kept as float32, as the service stores them.

import { GRPC, PineconeApiError } from './errors.js'
import { type Metadata, type MetadataValue, matchesFilter, validateFilter } from './filter.js'

export type Metric = 'cosine' | 'euclidean' | 'dotproduct'
export type VectorType = 'dense' | 'sparse'

export interface IndexSpec {
  name: string
  dimension?: number | undefined
  metric?: Metric | undefined
  vectorType?: VectorType | undefined
}

export interface StoredRecord {
  id: string
  values: Float32Array | undefined
  sparse: { indices: number[]; values: Float32Array } | undefined
  metadata: Metadata | undefined
}

/** The service's fixed limits. */
export const LIMITS = {
  maxUpsertVectors: 1000,
  maxFetchIds: 1000,
  maxDeleteIds: 1000,
  maxIdLength: 512,
  maxMetadataBytes: 40 * 1024,
  maxSparseValues: 2048,
  maxTopK: 10_000,
  maxDimension: 20_000,
  defaultListLimit: 100,
} as const

function invalid(message: string): PineconeApiError {
  return PineconeApiError.data(400, GRPC.INVALID_ARGUMENT, message)
}

const utf8 = new TextEncoder()

/** Byte-order ("C" collation) comparison of two ids, as `list` orders them. */
export function compareIds(a: string, b: string): number {
  // UTF-16 order equals UTF-8 byte order except between surrogates and U+E000..U+FFFF.
  if (a === b) return 0
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys && (x >= 0xe000 || y >= 0xe000)) return xs ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length - b.length
}

function describeType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'list'
  if (typeof value === 'object') return 'struct'
  return typeof value
}

function checkMetadata(id: string, metadata: unknown): Metadata | undefined {
  if (metadata === undefined || metadata === null) return undefined
  if (typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw invalid(`Metadata must be an object, got ${describeType(metadata)} for vector ${id}`)
  }
  for (const [field, value] of Object.entries(metadata)) {
    const ok =
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value)) ||
      (Array.isArray(value) && value.every((element) => typeof element === 'string'))
    if (!ok) {
      throw invalid(
        `Metadata value must be a string, number, boolean or list of strings, got '${describeType(value)}' for field '${field}'`,
      )
    }
  }
  const size = utf8.encode(JSON.stringify(metadata)).length
  if (size > LIMITS.maxMetadataBytes) {
    throw invalid(
      `Metadata size is ${size} bytes, which exceeds the limit of ${LIMITS.maxMetadataBytes} bytes per vector`,
    )
  }
  return metadata as Metadata
}

function checkNumbers(values: unknown, what: string, id: string): number[] {
  if (!Array.isArray(values)) throw invalid(`${what} of vector ${id} must be a list of numbers`)
  for (const value of values) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw invalid(`${what} of vector ${id} must be finite numbers, got ${JSON.stringify(value)}`)
    }
  }
  return values as number[]
}

export class PineconeIndex {
  readonly name: string
  readonly dimension: number | undefined
  readonly metric: Metric
  readonly vectorType: VectorType
  readonly namespaces = new Map<string, Map<string, StoredRecord>>()
  /** Namespaces created explicitly, kept when empty. */
  readonly createdNamespaces = new Set<string>()
  readonly createdAt = new Date()
  private readonly sortedIds = new Map<string, string[]>()

  constructor(spec: IndexSpec) {
    this.name = spec.name
    this.vectorType = spec.vectorType ?? 'dense'
    this.metric = spec.metric ?? (this.vectorType === 'sparse' ? 'dotproduct' : 'cosine')
    this.dimension = this.vectorType === 'dense' ? spec.dimension : undefined
  }

  private namespace(name: string, create: boolean): Map<string, StoredRecord> | undefined {
    let records = this.namespaces.get(name)
    if (!records && create) {
      records = new Map()
      this.namespaces.set(name, records)
    }
    return records
  }

  private dropIfEmpty(name: string): void {
    const records = this.namespaces.get(name)
    if (records && records.size === 0 && !this.createdNamespaces.has(name)) {
      this.namespaces.delete(name)
    }
    this.sortedIds.delete(name)
  }

  /** Validate one wire record into its stored form; throws the service's 400 otherwise. */
  private toRecord(raw: unknown): StoredRecord {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw invalid('Each vector must be an object')
    }
    const wire = raw as Record<string, unknown>
    const id = wire.id
    if (typeof id !== 'string' || id.length === 0)
      throw invalid('Vector ID must be a non-empty string')
    if ([...id].length > LIMITS.maxIdLength) {
      throw invalid(
        `Vector ID must be ${LIMITS.maxIdLength} characters or less, got ${[...id].length}`,
      )
    }
    let values: Float32Array | undefined
    if (wire.values !== undefined && wire.values !== null) {
      const numbers = checkNumbers(wire.values, 'Values', id)
      if (numbers.length > 0 || this.vectorType === 'dense') values = Float32Array.from(numbers)
    }
    let sparse: StoredRecord['sparse']
    if (wire.sparseValues !== undefined && wire.sparseValues !== null) {
      const raw = wire.sparseValues as Record<string, unknown>
      const indices = checkNumbers(raw.indices, 'Sparse indices', id)
      const sparseValues = checkNumbers(raw.values, 'Sparse values', id)
      if (indices.length !== sparseValues.length) {
        throw invalid(
          `Sparse vector indices and values must have the same length, got ${indices.length} indices and ${sparseValues.length} values for vector ${id}`,
        )
      }
      if (indices.length > LIMITS.maxSparseValues) {
        throw invalid(
          `Sparse vector of vector ${id} has ${indices.length} non-zero values; the limit is ${LIMITS.maxSparseValues}`,
        )
      }
      const seen = new Set<number>()
      for (const index of indices) {
        if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
          throw invalid(
            `Sparse indices of vector ${id} must be unsigned 32-bit integers, got ${index}`,
          )
        }
        if (seen.has(index))
          throw invalid(`Sparse indices of vector ${id} contain duplicate index ${index}`)
        seen.add(index)
      }
      if (indices.length > 0)
        sparse = { indices: [...indices], values: Float32Array.from(sparseValues) }
    }
    if (this.vectorType === 'dense') {
      if (!values || values.length === 0) {
        throw invalid(
          `Vector dimension 0 does not match the dimension of the index ${this.dimension}`,
        )
      }
      if (values.length !== this.dimension) {
        throw invalid(
          `Vector dimension ${values.length} does not match the dimension of the index ${this.dimension}`,
        )
      }
      if (values.every((value) => value === 0)) {
        throw invalid(`Dense vectors must contain at least one non-zero value (vector ${id})`)
      }
    } else {
      if (values) throw invalid(`Sparse indexes do not accept dense values (vector ${id})`)
      if (!sparse) throw invalid(`Sparse vector ${id} must contain at least one non-zero value`)
    }
    return { id, values, sparse, metadata: checkMetadata(id, wire.metadata) }
  }

  upsert(vectors: unknown, namespace: string): number {
    if (!Array.isArray(vectors) || vectors.length === 0) {
      throw invalid('Upsert request must contain at least one vector')
    }
    if (vectors.length > LIMITS.maxUpsertVectors) {
      throw invalid(
        `Request contains ${vectors.length} vectors; the maximum batch size is ${LIMITS.maxUpsertVectors} vectors`,
      )
    }
    // All or nothing, as the service: validate the whole request before storing any of it.
    const records = vectors.map((raw) => this.toRecord(raw))
    const target = this.namespace(namespace, true)!
    for (const record of records) target.set(record.id, record)
    this.sortedIds.delete(namespace)
    return records.length
  }

  fetch(ids: string[], namespace: string): StoredRecord[] {
    if (ids.length === 0) throw invalid('Fetch request must contain at least one id')
    if (ids.length > LIMITS.maxFetchIds) {
      throw invalid(`Fetch request contains ${ids.length} ids; the limit is ${LIMITS.maxFetchIds}`)
    }
    const records = this.namespace(namespace, false)
    const found: StoredRecord[] = []
    if (!records) return found
    for (const id of ids) {
      const record = records.get(id)
      if (record) found.push(record)
    }
    return found
  }

  private sorted(namespace: string): string[] {
    let ids = this.sortedIds.get(namespace)
    if (!ids) {
      ids = [...(this.namespaces.get(namespace)?.keys() ?? [])].sort(compareIds)
      this.sortedIds.set(namespace, ids)
    }
    return ids
  }

  /** Ids in byte order after `after` (exclusive), starting with `prefix`. */
  list(
    namespace: string,
    prefix: string,
    after: string | undefined,
    limit: number,
  ): { ids: string[]; more: boolean } {
    const ids = this.sorted(namespace)
    const start = after !== undefined && compareIds(after, prefix) >= 0 ? after : prefix
    // First position whose id is > after, or >= prefix.
    let low = 0
    let high = ids.length
    while (low < high) {
      const middle = (low + high) >>> 1
      const order = compareIds(ids[middle]!, start)
      if (order < 0 || (order === 0 && start === after)) low = middle + 1
      else high = middle
    }
    const page: string[] = []
    let position = low
    for (; position < ids.length && page.length < limit; position++) {
      const id = ids[position]!
      if (!id.startsWith(prefix)) return { ids: page, more: false }
      page.push(id)
    }
    const more = position < ids.length && ids[position]!.startsWith(prefix)
    return { ids: page, more }
  }

  deleteIds(ids: string[], namespace: string): void {
    if (ids.length > LIMITS.maxDeleteIds) {
      throw invalid(
        `Delete request contains ${ids.length} ids; the limit is ${LIMITS.maxDeleteIds}`,
      )
    }
    const records = this.namespace(namespace, false)
    if (!records) return
    for (const id of ids) records.delete(id)
    this.dropIfEmpty(namespace)
  }

  deleteByFilter(filter: unknown, namespace: string): void {
    validateFilter(filter)
    const records = this.namespace(namespace, false)
    if (!records) return
    for (const [id, record] of records) {
      if (matchesFilter(record.metadata, filter)) records.delete(id)
    }
    this.dropIfEmpty(namespace)
  }

  deleteAll(namespace: string): void {
    this.namespaces.get(namespace)?.clear()
    this.dropIfEmpty(namespace)
  }

  count(namespace: string, filter?: Record<string, unknown>): number {
    const records = this.namespaces.get(namespace)
    if (!records) return 0
    if (!filter) return records.size
    let count = 0
    for (const record of records.values()) if (matchesFilter(record.metadata, filter)) count++
    return count
  }

  query(request: {
    namespace: string
    topK: number
    vector?: number[] | undefined
    sparseVector?: { indices: number[]; values: number[] } | undefined
    id?: string | undefined
    filter?: unknown
  }): { record: StoredRecord; score: number }[] {
    const { topK } = request
    if (!Number.isInteger(topK) || topK < 1 || topK > LIMITS.maxTopK) {
      throw invalid(`topK must be an integer between 1 and ${LIMITS.maxTopK}, got ${topK}`)
    }
    if (request.filter !== undefined && request.filter !== null) validateFilter(request.filter)
    const filter = (request.filter ?? undefined) as Record<string, unknown> | undefined
    let dense: Float32Array | number[] | undefined
    let sparse = request.sparseVector
    if (request.id !== undefined) {
      if (request.vector !== undefined) throw invalid('Cannot query with both a vector and an id')
      const stored = this.namespaces.get(request.namespace)?.get(request.id)
      if (!stored) return []
      dense = stored.values
      sparse = stored.sparse
        ? { indices: stored.sparse.indices, values: [...stored.sparse.values] }
        : undefined
    } else if (request.vector !== undefined && request.vector.length > 0) {
      dense = checkNumbers(request.vector, 'Query vector', 'query')
      if (this.vectorType === 'dense' && dense.length !== this.dimension) {
        throw invalid(
          `Query vector dimension ${dense.length} does not match the dimension of the index ${this.dimension}`,
        )
      }
    } else if (!sparse) {
      throw invalid('A query needs a vector, a sparse vector or an id')
    }
    if (sparse && this.metric !== 'dotproduct') {
      throw invalid('Cannot query index with sparse values: the index metric must be dotproduct')
    }
    const records = this.namespaces.get(request.namespace)
    if (!records) return []
    const sparseQuery = sparse
      ? new Map(sparse.indices.map((index, i) => [index, sparse!.values[i]!]))
      : undefined
    const scored: { record: StoredRecord; score: number }[] = []
    for (const record of records.values()) {
      if (filter && !matchesFilter(record.metadata, filter)) continue
      scored.push({ record, score: this.score(dense, sparseQuery, record) })
    }
    // Euclidean scores are squared distances: smaller is closer.
    if (this.metric === 'euclidean') scored.sort((a, b) => a.score - b.score)
    else scored.sort((a, b) => b.score - a.score)
    return scored.slice(0, topK)
  }

  private score(
    dense: Float32Array | number[] | undefined,
    sparse: Map<number, number> | undefined,
    record: StoredRecord,
  ): number {
    let score = 0
    if (dense && record.values) {
      const values = record.values
      if (this.metric === 'euclidean') {
        for (let i = 0; i < values.length; i++) {
          const delta = values[i]! - dense[i]!
          score += delta * delta
        }
      } else if (this.metric === 'cosine') {
        let dot = 0
        let a = 0
        let b = 0
        for (let i = 0; i < values.length; i++) {
          dot += values[i]! * dense[i]!
          a += dense[i]! * dense[i]!
          b += values[i]! * values[i]!
        }
        score = a === 0 || b === 0 ? 0 : dot / Math.sqrt(a * b)
      } else {
        for (let i = 0; i < values.length; i++) score += values[i]! * dense[i]!
      }
    }
    if (sparse && record.sparse) {
      const { indices, values } = record.sparse
      for (let i = 0; i < indices.length; i++) {
        const weight = sparse.get(indices[i]!)
        if (weight !== undefined) score += weight * values[i]!
      }
    }
    return score
  }
}

/** The shortest decimal that reads back as the same float32, as the service prints values. */
export function float32ToNumber(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value
  for (let precision = 1; precision < 9; precision++) {
    const candidate = Number(value.toPrecision(precision))
    if (Math.fround(candidate) === value) return candidate
  }
  return Number(value.toPrecision(9))
}

export function float32Array(values: Float32Array): number[] {
  const out = new Array<number>(values.length)
  for (let i = 0; i < values.length; i++) out[i] = float32ToNumber(values[i]!)
  return out
}

export type { Metadata, MetadataValue }
