import {
  HIT_RAW_JSON,
  keepExactHitNumbers,
  ProviderError,
  raceAbort,
  stringifyExact,
} from '@nvisy/provider-core'
import { type Client, type ClientOptions, Serializer } from '@opensearch-project/opensearch'
import type { OpenSearchCredentials, OpenSearchParams } from './opensearch-schemas.js'

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
  override deserialize(json: string): unknown {
    return keepExactHitNumbers(json, super.deserialize(json))
  }

  override serialize(object: unknown): string {
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
  credentials: OpenSearchCredentials,
  params: OpenSearchParams,
  ca?: string,
): ClientOptions {
  const node = params.url ?? params.nodes
  if (node === undefined) throw configError('OpenSearch needs params.url or params.nodes')
  if (params.url !== undefined && params.nodes !== undefined)
    throw configError('give params.url or params.nodes, not both')
  if (
    credentials.bearerToken !== undefined &&
    (credentials.username !== undefined || credentials.password !== undefined)
  )
    throw configError(
      'give one kind of credentials: credentials.bearerToken, or credentials.username with credentials.password',
    )
  if ((credentials.username === undefined) !== (credentials.password === undefined))
    throw configError(
      'credentials.username and credentials.password go together: give both or neither',
    )
  const options: ClientOptions = {
    node,
    requestTimeout: params.requestTimeoutMs ?? 30_000,
    maxRetries: params.maxRetries ?? 3,
    name: 'nvisy',
    Serializer: ExactSerializer,
  }
  if (credentials.bearerToken !== undefined)
    options.headers = { authorization: `Bearer ${credentials.bearerToken}` }
  else if (credentials.username !== undefined && credentials.password !== undefined)
    options.auth = { username: credentials.username, password: credentials.password }
  if (ca !== undefined || params.rejectUnauthorized === false) {
    options.ssl = {
      ...(ca !== undefined ? { ca } : {}),
      rejectUnauthorized: params.rejectUnauthorized ?? true,
    }
  }
  return options
}

interface Request {
  method: string
  path: string
  body?: unknown
  bulkBody?: unknown[]
  querystring?: Record<string, unknown>
}

export class OpenSearchBackend implements SearchBackend {
  readonly product = 'OpenSearch'
  constructor(
    readonly client: Client,
    private readonly owned: boolean,
  ) {}

  /** One request; the signal aborts it (the client's promise has abort()). */
  private async request<T>(
    params: Request,
    signal: AbortSignal | undefined,
    ignore?: number[],
  ): Promise<{ body: T; statusCode: number | null }> {
    const pending = this.client.transport.request(params as never, ignore ? { ignore } : {})
    const abort = () => pending.abort()
    signal?.addEventListener('abort', abort, { once: true })
    try {
      const response = await raceAbort(pending as unknown as Promise<unknown>, signal)
      return response as { body: T; statusCode: number | null }
    } finally {
      signal?.removeEventListener('abort', abort)
    }
  }

  async info(signal: AbortSignal) {
    const { body } = await this.request<{
      version?: { number?: string; distribution?: string }
    }>({ method: 'GET', path: '/' }, signal)
    return {
      number: String(body?.version?.number ?? ''),
      ...(body?.version?.distribution ? { distribution: body.version.distribution } : {}),
    }
  }

  async health(signal: AbortSignal) {
    const { body } = await this.request<{ status?: string }>(
      { method: 'GET', path: '/_cluster/health' },
      signal,
    )
    return { status: String(body?.status) }
  }

  async openPit(index: string, keepAlive: string, signal: AbortSignal) {
    const { body } = await this.request<{ pit_id: string }>(
      {
        method: 'POST',
        path: `/${encodeURIComponent(index)}/_search/point_in_time`,
        querystring: { keep_alive: keepAlive },
      },
      signal,
    )
    return body.pit_id
  }

  async closePit(id: string) {
    await this.request(
      { method: 'DELETE', path: '/_search/point_in_time', body: { pit_id: [id] } },
      undefined,
      [404],
    ).catch(() => {})
  }

  async search(body: Record<string, unknown>, signal: AbortSignal) {
    return (await this.request<SearchResponse>({ method: 'POST', path: '/_search', body }, signal))
      .body
  }

  async bulk(lines: string[], refresh: string, signal: AbortSignal) {
    return (
      await this.request<BulkResponse>(
        { method: 'POST', path: '/_bulk', querystring: { refresh }, bulkBody: lines },
        signal,
      )
    ).body
  }

  async indexExists(index: string, signal: AbortSignal) {
    const { statusCode } = await this.request(
      { method: 'HEAD', path: `/${encodeURIComponent(index)}` },
      signal,
      [404],
    )
    return statusCode === 200
  }

  async createIndex(index: string, body: Record<string, unknown>, signal: AbortSignal) {
    await this.request({ method: 'PUT', path: `/${encodeURIComponent(index)}`, body }, signal)
  }

  async getMappings(pattern: string, signal: AbortSignal) {
    return (
      await this.request<Record<string, { mappings?: { properties?: Record<string, unknown> } }>>(
        {
          method: 'GET',
          path: `/${encodeURIComponent(pattern)}/_mapping`,
          querystring: { expand_wildcards: 'open' },
        },
        signal,
      )
    ).body
  }

  async dataStreams(signal: AbortSignal) {
    const { body } = await this.request<{ data_streams?: { name: string }[] }>(
      { method: 'GET', path: '/_data_stream' },
      signal,
      [404],
    )
    return (body?.data_streams ?? []).map((stream) => ({ name: stream.name }))
  }

  async close() {
    if (this.owned) await this.client.close()
  }
}
