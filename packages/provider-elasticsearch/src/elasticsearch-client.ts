import { type Client, type ClientOptions, Serializer } from '@elastic/elasticsearch'
import {
  HIT_RAW_JSON,
  keepExactHitNumbers,
  ProviderError,
  raceAbort,
  stringifyExact,
} from '@nvisy/provider-core'
import type { ElasticsearchCredentials, ElasticsearchParams } from './elasticsearch-schemas.js'

export interface SearchHit {
  _index: string
  _id: string
  _source?: Record<string, unknown>
  sort?: unknown[]
  /** Its _source fields holding numbers JSON.parse changes, as exact JSON text. */
  [HIT_RAW_JSON]?: Record<string, string>
}

export interface SearchResponse {
  pit_id?: string
  _shards?: { total?: number; failed?: number; failures?: unknown[] }
  timed_out?: boolean
  hits: { hits: SearchHit[] }
}

export interface BulkItemResult {
  _index?: string
  _id?: string | null
  status: number
  error?: { type?: string; reason?: string; caused_by?: { type?: string; reason?: string } }
}

export interface BulkResponse {
  errors: boolean
  items: Record<string, BulkItemResult>[]
}

/** The requests the provider makes, over one client. */
export interface SearchBackend {
  readonly product: string
  info(signal: AbortSignal): Promise<{ number: string; distribution?: string }>
  health(signal: AbortSignal): Promise<{ status: string }>
  openPit(index: string, keepAlive: string, signal: AbortSignal): Promise<string>
  closePit(id: string): Promise<void>
  search(body: Record<string, unknown>, signal: AbortSignal): Promise<SearchResponse>
  bulk(lines: string[], refresh: string, signal: AbortSignal): Promise<BulkResponse>
  indexExists(index: string, signal: AbortSignal): Promise<boolean>
  createIndex(index: string, body: Record<string, unknown>, signal: AbortSignal): Promise<void>
  getMappings(
    pattern: string,
    signal: AbortSignal,
  ): Promise<Record<string, { mappings?: { properties?: Record<string, unknown> } }>>
  dataStreams(signal: AbortSignal): Promise<{ name: string }[]>
  close(): Promise<void>
}

/**
 * The client's serializer, keeping numbers JSON.parse changes: a search response's hits
 * carry the exact text of such _source fields and such sort values as `{ number }`
 * (`keepExactHitNumbers`), and a request body writes those numbers as their text.
 */
export class ExactSerializer extends Serializer {
  override deserialize<T = unknown>(json: string): T {
    return keepExactHitNumbers(json, super.deserialize(json)) as T
  }

  override serialize(object: Record<string, unknown>): string {
    let text: string | undefined
    try {
      text = stringifyExact(object)
    } catch {
      // The client's own error for a body it cannot write (a cycle, a BigInt).
      return super.serialize(object)
    }
    return text ?? super.serialize(object)
  }
}

export function configError(message: string): ProviderError {
  return new ProviderError({ kind: 'config', operation: 'connect', message })
}

/** Client options for validated credentials and params (the CA file already read). */
export function clientOptions(
  credentials: ElasticsearchCredentials,
  params: ElasticsearchParams,
  ca?: string,
): ClientOptions {
  const node = params.url ?? params.nodes
  if (node === undefined) throw configError('Elasticsearch needs params.url or params.nodes')
  if (params.url !== undefined && params.nodes !== undefined)
    throw configError('give params.url or params.nodes, not both')
  const kinds = [
    credentials.apiKey !== undefined,
    credentials.bearerToken !== undefined,
    credentials.username !== undefined || credentials.password !== undefined,
  ].filter(Boolean).length
  if (kinds > 1)
    throw configError(
      'give one kind of credentials: credentials.apiKey, credentials.bearerToken, or credentials.username with credentials.password',
    )
  if ((credentials.username === undefined) !== (credentials.password === undefined))
    throw configError(
      'credentials.username and credentials.password go together: give both or neither',
    )
  const options: ClientOptions = {
    node,
    requestTimeout: params.requestTimeoutMs ?? 30_000,
    maxRetries: params.maxRetries ?? 3,
    // Authorization headers and URL passwords are redacted from error metadata (the
    // provider never keeps that metadata anyway; it reads the status, body and Retry-After).
    redaction: { type: 'replace' },
    name: 'nvisy',
    Serializer: ExactSerializer,
  }
  if (credentials.apiKey !== undefined) options.auth = { apiKey: credentials.apiKey }
  else if (credentials.bearerToken !== undefined) options.auth = { bearer: credentials.bearerToken }
  else if (credentials.username !== undefined && credentials.password !== undefined)
    options.auth = { username: credentials.username, password: credentials.password }
  if (params.caFingerprint !== undefined) options.caFingerprint = params.caFingerprint
  if (ca !== undefined || params.rejectUnauthorized === false) {
    options.tls = {
      ...(ca !== undefined ? { ca } : {}),
      rejectUnauthorized: params.rejectUnauthorized ?? true,
    }
  }
  return options
}

export class ElasticsearchBackend implements SearchBackend {
  readonly product = 'Elasticsearch'
  constructor(
    readonly client: Client,
    private readonly owned: boolean,
  ) {}

  async info(signal: AbortSignal) {
    const info = await raceAbort(this.client.info({}, { signal }), signal)
    return { number: info.version.number }
  }

  async health(signal: AbortSignal) {
    const health = await raceAbort(this.client.cluster.health({}, { signal }), signal)
    return { status: String(health.status) }
  }

  async openPit(index: string, keepAlive: string, signal: AbortSignal) {
    const pit = await raceAbort(
      this.client.openPointInTime({ index, keep_alive: keepAlive }, { signal }),
      signal,
    )
    return pit.id
  }

  async closePit(id: string) {
    await this.client.closePointInTime({ id }, { ignore: [404] }).catch(() => {})
  }

  async search(body: Record<string, unknown>, signal: AbortSignal) {
    return raceAbort(
      this.client.transport.request<SearchResponse>(
        { method: 'POST', path: '/_search', body },
        { signal },
      ),
      signal,
    )
  }

  async bulk(lines: string[], refresh: string, signal: AbortSignal) {
    return raceAbort(
      this.client.transport.request<BulkResponse>(
        { method: 'POST', path: '/_bulk', querystring: { refresh }, bulkBody: lines },
        { signal },
      ),
      signal,
    )
  }

  async indexExists(index: string, signal: AbortSignal) {
    return raceAbort(this.client.indices.exists({ index }, { signal }), signal)
  }

  async createIndex(index: string, body: Record<string, unknown>, signal: AbortSignal) {
    await raceAbort(
      this.client.transport.request(
        { method: 'PUT', path: `/${encodeURIComponent(index)}`, body },
        { signal },
      ),
      signal,
    )
  }

  async getMappings(pattern: string, signal: AbortSignal) {
    return (await raceAbort(
      this.client.indices.getMapping({ index: pattern, expand_wildcards: 'open' }, { signal }),
      signal,
    )) as Record<string, { mappings?: { properties?: Record<string, unknown> } }>
  }

  async dataStreams(signal: AbortSignal) {
    const result = await raceAbort(
      this.client.indices.getDataStream({}, { signal, ignore: [404] }),
      signal,
    )
    return (result?.data_streams ?? []).map((stream) => ({ name: stream.name }))
  }

  async close() {
    if (this.owned) await this.client.close()
  }
}
