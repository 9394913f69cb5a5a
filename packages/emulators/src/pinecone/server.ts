// A Pinecone REST emulator: control plane (/indexes) and data plane (/data/<index>/...) on
// one HTTP port, answering the unmodified @pinecone-database/pinecone SDK. Each index's
// `host` is `http://127.0.0.1:<port>/data/<index>`; the SDK appends the data-plane paths
// to it. With a single index the data-plane paths also answer without the prefix.

import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ControlErrorCode, GRPC, PineconeApiError } from './errors.js'
import { validateFilter } from './filter.js'
import {
  float32Array,
  type IndexSpec,
  LIMITS,
  type Metric,
  PineconeIndex,
  type StoredRecord,
  type VectorType,
} from './store.js'

/** The service's request body limit for the data plane. */
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024

export interface PineconeEmulatorOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number
  /** Host to bind. Default 127.0.0.1. */
  host?: string
  /** The only accepted `Api-Key`. Without it any non-empty key is accepted. */
  apiKey?: string
  /** Indexes that exist from the start. */
  indexes?: { name: string; dimension?: number; metric?: Metric; vectorType?: VectorType }[]
  /** Request body limit in bytes. Default 2 MiB, the service's limit. */
  maxRequestBytes?: number
}

export interface PineconeFault {
  /** HTTP status to answer with (429, 500, 503...). */
  status: number
  /** How many requests fail. Default 1. */
  times?: number
  /** Only requests whose path contains this text. */
  path?: string
  /** Sent as the `Retry-After` header, in seconds. */
  retryAfterSeconds?: number
  message?: string
}

export interface PineconeRequestLog {
  method: string
  path: string
  status: number
  /** Request body size in bytes. */
  bytes: number
  /** Vectors in an upsert request. */
  vectors?: number
}

export interface PineconeEmulator {
  /** Base URL: the control-plane host (`controllerHostUrl`). */
  url: string
  port: number
  /** The data-plane host of an index. */
  hostOf(indexName: string): string
  createIndex(spec: IndexSpec): void
  index(name: string): PineconeIndex | undefined
  /** Make the next matching requests fail with a status (rate limits, outages). */
  failNext(fault: PineconeFault): void
  /** Every request answered, oldest first (the last 100 000). */
  readonly requests: PineconeRequestLog[]
  close(): Promise<void>
}

const INDEX_NAME = /^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$/
const METRICS = new Set<Metric>(['cosine', 'euclidean', 'dotproduct'])
const MAX_LOG = 100_000

class BodyTooLarge extends Error {
  constructor(readonly bytes: number) {
    super('body too large')
  }
}

function controlError(status: number, code: ControlErrorCode, message: string): PineconeApiError {
  return PineconeApiError.control(status, code, message)
}

function dataError(status: number, code: number, message: string): PineconeApiError {
  return PineconeApiError.data(status, code, message)
}

function keyMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Read a body up to `limit` bytes; past it the rest is drained and BodyTooLarge thrown. */
async function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of request as AsyncIterable<Buffer>) {
    bytes += chunk.length
    if (bytes <= limit) chunks.push(chunk)
  }
  if (bytes > limit) throw new BodyTooLarge(bytes)
  return Buffer.concat(chunks, bytes)
}

function parseJson(body: Buffer, dataPlane: boolean): Record<string, unknown> {
  if (body.length === 0) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    throw dataPlane
      ? dataError(400, GRPC.INVALID_ARGUMENT, 'Invalid request body: not valid JSON')
      : controlError(400, 'INVALID_ARGUMENT', 'Invalid request body: not valid JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw dataPlane
      ? dataError(400, GRPC.INVALID_ARGUMENT, 'Invalid request body: expected a JSON object')
      : controlError(400, 'INVALID_ARGUMENT', 'Invalid request body: expected a JSON object')
  }
  return parsed as Record<string, unknown>
}

function namespaceOf(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') {
    throw dataError(400, GRPC.INVALID_ARGUMENT, 'namespace must be a string')
  }
  return value
}

function wireRecord(record: StoredRecord, includeValues = true, includeMetadata = true) {
  const out: Record<string, unknown> = { id: record.id }
  out.values = includeValues && record.values ? float32Array(record.values) : []
  if (includeValues && record.sparse) {
    out.sparseValues = {
      indices: record.sparse.indices,
      values: float32Array(record.sparse.values),
    }
  }
  if (includeMetadata && record.metadata) out.metadata = record.metadata
  return out
}

function encodeToken(id: string): string {
  return Buffer.from(JSON.stringify({ after: id })).toString('base64url')
}

function decodeToken(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
    if (typeof parsed?.after === 'string') return parsed.after
  } catch {}
  throw dataError(400, GRPC.INVALID_ARGUMENT, 'Invalid pagination token')
}

export class PineconeEmulatorServer {
  readonly indexes = new Map<string, PineconeIndex>()
  readonly requests: PineconeRequestLog[] = []
  private readonly faults: PineconeFault[] = []
  private readonly server: Server
  private readonly apiKey: string | undefined
  private readonly maxRequestBytes: number
  private origin = ''

  constructor(options: PineconeEmulatorOptions = {}) {
    this.apiKey = options.apiKey
    this.maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES
    for (const spec of options.indexes ?? []) this.createIndex(spec)
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error) => {
        if (!response.headersSent) {
          this.send(response, 500, {
            error: { code: 'INTERNAL', message: String(error) },
            status: 500,
          })
        } else {
          response.destroy()
        }
      })
    })
    this.server.keepAliveTimeout = 30_000
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<{ url: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const address = this.server.address() as AddressInfo
    const shown = host.includes(':') ? `[${host}]` : host
    this.origin = `http://${shown}:${address.port}`
    return { url: this.origin, port: address.port }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  hostOf(name: string): string {
    return `${this.origin}/data/${encodeURIComponent(name)}`
  }

  createIndex(spec: IndexSpec): PineconeIndex {
    const index = new PineconeIndex(spec)
    this.indexes.set(spec.name, index)
    return index
  }

  failNext(fault: PineconeFault): void {
    this.faults.push({ ...fault, times: fault.times ?? 1 })
  }

  private send(
    response: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = body === undefined ? '' : JSON.stringify(body)
    response.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    })
    response.end(text)
  }

  private log(entry: PineconeRequestLog): void {
    this.requests.push(entry)
    if (this.requests.length > MAX_LOG) this.requests.splice(0, this.requests.length - MAX_LOG)
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://emulator')
    const method = request.method ?? 'GET'
    const path = url.pathname
    const dataPlane = !path.startsWith('/indexes')
    const entry: PineconeRequestLog = { method, path, status: 0, bytes: 0 }
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      entry.status = status
      this.log(entry)
      this.send(response, status, body, headers)
    }
    try {
      let body: Buffer
      try {
        body = await readBody(request, this.maxRequestBytes)
      } catch (error) {
        if (!(error instanceof BodyTooLarge)) throw error
        entry.bytes = error.bytes
        throw dataError(
          413,
          GRPC.RESOURCE_EXHAUSTED,
          `Your request is larger than the maximum supported size - ${Math.round(this.maxRequestBytes / 1048576)}MB. Please try to reduce your batch size.`,
        )
      }
      entry.bytes = body.length
      this.authenticate(request, dataPlane)
      const fault = this.takeFault(path)
      if (fault) {
        const message = fault.message ?? `Injected failure with status ${fault.status}`
        const headers: Record<string, string> = {}
        if (fault.retryAfterSeconds !== undefined)
          headers['retry-after'] = String(fault.retryAfterSeconds)
        const grpc =
          fault.status === 429
            ? GRPC.RESOURCE_EXHAUSTED
            : fault.status >= 500
              ? GRPC.UNAVAILABLE
              : GRPC.INVALID_ARGUMENT
        throw new PineconeApiError(
          fault.status,
          dataPlane
            ? { code: grpc, message, details: [] }
            : {
                error: {
                  code:
                    fault.status === 429
                      ? 'RESOURCE_EXHAUSTED'
                      : fault.status >= 500
                        ? 'UNAVAILABLE'
                        : 'INVALID_ARGUMENT',
                  message,
                },
                status: fault.status,
              },
          message,
          headers,
        )
      }
      const result = dataPlane
        ? this.dataPlane(method, path, url.searchParams, body, entry)
        : this.controlPlane(method, path, body)
      reply(result.status, result.body)
    } catch (error) {
      if (error instanceof PineconeApiError) {
        reply(error.status, error.body, error.headers)
        return
      }
      throw error
    }
  }

  private authenticate(request: IncomingMessage, dataPlane: boolean): void {
    const given = request.headers['api-key']
    const key = Array.isArray(given) ? given[0] : given
    const ok =
      key !== undefined &&
      key.length > 0 &&
      (this.apiKey === undefined || keyMatches(key, this.apiKey))
    if (ok) return
    throw dataPlane
      ? dataError(401, GRPC.UNAUTHENTICATED, 'Invalid API Key')
      : controlError(401, 'UNAUTHENTICATED', 'Invalid API Key')
  }

  private takeFault(path: string): PineconeFault | undefined {
    const position = this.faults.findIndex(
      (fault) => fault.path === undefined || path.includes(fault.path),
    )
    if (position < 0) return undefined
    const fault = this.faults[position]!
    fault.times = (fault.times ?? 1) - 1
    if (fault.times <= 0) this.faults.splice(position, 1)
    return fault
  }

  private indexModel(index: PineconeIndex) {
    const model: Record<string, unknown> = {
      name: index.name,
      metric: index.metric,
      host: this.hostOf(index.name),
      vector_type: index.vectorType,
      deletion_protection: 'disabled',
      tags: {},
      spec: { serverless: { cloud: 'aws', region: 'us-east-1' } },
      status: { ready: true, state: 'Ready' },
    }
    if (index.dimension !== undefined) model.dimension = index.dimension
    return model
  }

  private controlPlane(
    method: string,
    path: string,
    body: Buffer,
  ): { status: number; body: unknown } {
    const parts = path.split('/').filter(Boolean)
    if (parts.length === 1) {
      if (method === 'GET') {
        return {
          status: 200,
          body: { indexes: [...this.indexes.values()].map((index) => this.indexModel(index)) },
        }
      }
      if (method === 'POST')
        return {
          status: 201,
          body: this.indexModel(this.createFromRequest(parseJson(body, false))),
        }
    }
    if (parts.length === 2) {
      const name = decodeURIComponent(parts[1]!)
      const index = this.indexes.get(name)
      if (!index) throw controlError(404, 'NOT_FOUND', `Resource ${name} not found`)
      if (method === 'GET') return { status: 200, body: this.indexModel(index) }
      if (method === 'DELETE') {
        this.indexes.delete(name)
        return { status: 202, body: undefined }
      }
    }
    throw controlError(404, 'NOT_FOUND', `No route for ${method} ${path}`)
  }

  private createFromRequest(request: Record<string, unknown>): PineconeIndex {
    const { name, dimension, metric } = request
    const vectorType = (request.vector_type ?? 'dense') as VectorType
    if (typeof name !== 'string' || !INDEX_NAME.test(name)) {
      throw controlError(
        400,
        'INVALID_ARGUMENT',
        "Name must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character, and be 45 characters or less",
      )
    }
    if (vectorType !== 'dense' && vectorType !== 'sparse') {
      throw controlError(400, 'INVALID_ARGUMENT', `Invalid vector_type ${String(vectorType)}`)
    }
    if (vectorType === 'dense') {
      if (
        typeof dimension !== 'number' ||
        !Number.isInteger(dimension) ||
        dimension < 1 ||
        dimension > LIMITS.maxDimension
      ) {
        throw controlError(
          400,
          'INVALID_ARGUMENT',
          `Dimension must be an integer between 1 and ${LIMITS.maxDimension}`,
        )
      }
    } else if (dimension !== undefined && dimension !== null) {
      throw controlError(400, 'INVALID_ARGUMENT', 'Sparse indexes cannot have a dimension')
    }
    if (metric !== undefined && metric !== null && !METRICS.has(metric as Metric)) {
      throw controlError(400, 'INVALID_ARGUMENT', `Invalid metric ${String(metric)}`)
    }
    if (this.indexes.has(name))
      throw controlError(409, 'ALREADY_EXISTS', `Resource ${name} already exists`)
    return this.createIndex({
      name,
      dimension: dimension as number | undefined,
      metric: (metric ?? undefined) as Metric | undefined,
      vectorType,
    })
  }

  private resolveDataIndex(path: string): { index: PineconeIndex; rest: string } {
    if (path.startsWith('/data/')) {
      const end = path.indexOf('/', 6)
      const name = decodeURIComponent(end < 0 ? path.slice(6) : path.slice(6, end))
      const index = this.indexes.get(name)
      if (!index) throw dataError(404, GRPC.NOT_FOUND, `Index ${name} not found`)
      return { index, rest: end < 0 ? '/' : path.slice(end) }
    }
    if (this.indexes.size === 1) return { index: [...this.indexes.values()][0]!, rest: path }
    throw dataError(
      404,
      GRPC.NOT_FOUND,
      `No index for ${path}: use an index host (${this.origin}/data/<index>) when there is more than one index`,
    )
  }

  private dataPlane(
    method: string,
    path: string,
    query: URLSearchParams,
    raw: Buffer,
    entry: PineconeRequestLog,
  ): { status: number; body: unknown } {
    const { index, rest } = this.resolveDataIndex(path)
    const route = `${method} ${rest}`
    const usage = { readUnits: 1 }
    switch (route) {
      case 'POST /vectors/upsert': {
        const body = parseJson(raw, true)
        if (Array.isArray(body.vectors)) entry.vectors = body.vectors.length
        const upsertedCount = index.upsert(body.vectors, namespaceOf(body.namespace))
        return { status: 200, body: { upsertedCount } }
      }
      case 'GET /vectors/fetch': {
        const namespace = query.get('namespace') ?? ''
        const records = index.fetch(query.getAll('ids'), namespace)
        const vectors: Record<string, unknown> = {}
        for (const record of records) vectors[record.id] = wireRecord(record)
        return { status: 200, body: { vectors, namespace, usage } }
      }
      case 'GET /vectors/list': {
        const namespace = query.get('namespace') ?? ''
        const limitText = query.get('limit')
        const limit = limitText === null ? LIMITS.defaultListLimit : Number(limitText)
        if (!Number.isInteger(limit) || limit < 1) {
          throw dataError(
            400,
            GRPC.INVALID_ARGUMENT,
            `limit must be a positive integer, got ${limitText}`,
          )
        }
        const token = query.get('paginationToken')
        const after = token ? decodeToken(token) : undefined
        const page = index.list(namespace, query.get('prefix') ?? '', after, limit)
        const body: Record<string, unknown> = {
          vectors: page.ids.map((id) => ({ id })),
          namespace,
          usage,
        }
        if (page.more) body.pagination = { next: encodeToken(page.ids[page.ids.length - 1]!) }
        return { status: 200, body }
      }
      case 'POST /vectors/delete': {
        const body = parseJson(raw, true)
        const namespace = namespaceOf(body.namespace)
        const modes = [
          body.ids !== undefined,
          body.filter !== undefined,
          body.deleteAll === true,
        ].filter(Boolean)
        if (modes.length !== 1) {
          throw dataError(
            400,
            GRPC.INVALID_ARGUMENT,
            'Exactly one of ids, filter or deleteAll must be given',
          )
        }
        if (body.deleteAll === true) index.deleteAll(namespace)
        else if (body.filter !== undefined) index.deleteByFilter(body.filter, namespace)
        else {
          if (!Array.isArray(body.ids) || body.ids.some((id) => typeof id !== 'string')) {
            throw dataError(400, GRPC.INVALID_ARGUMENT, 'ids must be a list of strings')
          }
          index.deleteIds(body.ids as string[], namespace)
        }
        return { status: 200, body: {} }
      }
      case 'POST /vectors/update': {
        const body = parseJson(raw, true)
        const namespace = namespaceOf(body.namespace)
        const id = body.id
        if (typeof id !== 'string')
          throw dataError(400, GRPC.INVALID_ARGUMENT, 'id must be a string')
        const existing = index.namespaces.get(namespace)?.get(id)
        if (!existing) throw dataError(404, GRPC.NOT_FOUND, `Vector ID ${id} not found`)
        const merged: Record<string, unknown> = {
          id,
          values: body.values ?? (existing.values ? [...existing.values] : undefined),
          sparseValues:
            body.sparseValues ??
            (existing.sparse
              ? { indices: existing.sparse.indices, values: [...existing.sparse.values] }
              : undefined),
          metadata: {
            ...(existing.metadata ?? {}),
            ...((body.setMetadata as object | undefined) ?? {}),
          },
        }
        index.upsert([merged], namespace)
        return { status: 200, body: {} }
      }
      case 'POST /query': {
        const body = parseJson(raw, true)
        const namespace = namespaceOf(body.namespace)
        const matches = index.query({
          namespace,
          topK: body.topK as number,
          vector: body.vector as number[] | undefined,
          sparseVector: body.sparseVector as { indices: number[]; values: number[] } | undefined,
          id: body.id as string | undefined,
          filter: body.filter,
        })
        return {
          status: 200,
          body: {
            matches: matches.map(({ record, score }) => {
              const match = wireRecord(
                record,
                body.includeValues === true,
                body.includeMetadata === true,
              )
              return { ...match, score }
            }),
            namespace,
            usage: { readUnits: 5 },
          },
        }
      }
      case 'POST /describe_index_stats':
      case 'GET /describe_index_stats': {
        const body = parseJson(raw, true)
        let filter: Record<string, unknown> | undefined
        if (body.filter !== undefined && body.filter !== null) {
          validateFilter(body.filter)
          filter = body.filter
        }
        const namespaces: Record<string, { vectorCount: number }> = {}
        let total = 0
        for (const name of index.namespaces.keys()) {
          const vectorCount = index.count(name, filter)
          total += vectorCount
          namespaces[name] = { vectorCount }
        }
        const stats: Record<string, unknown> = {
          namespaces,
          indexFullness: 0,
          totalVectorCount: total,
          metric: index.metric,
          vectorType: index.vectorType,
        }
        if (index.dimension !== undefined) stats.dimension = index.dimension
        return { status: 200, body: stats }
      }
      case 'GET /namespaces': {
        const prefix = query.get('prefix') ?? ''
        const limitText = query.get('limit')
        const limit = limitText === null ? 100 : Number(limitText)
        if (!Number.isInteger(limit) || limit < 1) {
          throw dataError(
            400,
            GRPC.INVALID_ARGUMENT,
            `limit must be a positive integer, got ${limitText}`,
          )
        }
        const token = query.get('paginationToken')
        const after = token ? decodeToken(token) : undefined
        const names = [...index.namespaces.keys()].filter((name) => name.startsWith(prefix)).sort()
        const start = after === undefined ? 0 : names.findIndex((name) => name > after)
        const page = start < 0 ? [] : names.slice(start, start + limit)
        const body: Record<string, unknown> = {
          namespaces: page.map((name) => ({ name, record_count: index.count(name) })),
          total_count: names.length,
        }
        if (start >= 0 && start + limit < names.length)
          body.pagination = { next: encodeToken(page[page.length - 1]!) }
        return { status: 200, body }
      }
      case 'POST /namespaces': {
        const body = parseJson(raw, true)
        const name = body.name
        if (typeof name !== 'string' || name.length === 0) {
          throw dataError(400, GRPC.INVALID_ARGUMENT, 'name must be a non-empty string')
        }
        if (index.namespaces.has(name)) throw dataError(409, 6, `Namespace ${name} already exists`)
        index.namespaces.set(name, new Map())
        index.createdNamespaces.add(name)
        return { status: 200, body: { name, record_count: 0 } }
      }
    }
    if (rest.startsWith('/namespaces/')) {
      const name = decodeURIComponent(rest.slice('/namespaces/'.length))
      if (!index.namespaces.has(name))
        throw dataError(404, GRPC.NOT_FOUND, `Namespace ${name} not found`)
      if (method === 'GET') return { status: 200, body: { name, record_count: index.count(name) } }
      if (method === 'DELETE') {
        index.namespaces.delete(name)
        index.createdNamespaces.delete(name)
        index.deleteAll(name)
        return { status: 200, body: {} }
      }
    }
    throw dataError(404, GRPC.NOT_FOUND, `No route for ${method} ${rest}`)
  }
}

/** Start an emulator; `close()` stops it. */
export async function startPineconeEmulator(
  options: PineconeEmulatorOptions = {},
): Promise<PineconeEmulator> {
  const server = new PineconeEmulatorServer(options)
  const { url, port } = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  return {
    url,
    port,
    hostOf: (name) => server.hostOf(name),
    createIndex: (spec) => {
      server.createIndex(spec)
    },
    index: (name) => server.indexes.get(name),
    failNext: (fault) => server.failNext(fault),
    requests: server.requests,
    close: () => server.close(),
  }
}
