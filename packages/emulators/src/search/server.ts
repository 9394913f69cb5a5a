// A search-engine REST emulator that answers the unmodified @elastic/elasticsearch (8.x) and
// @opensearch-project/opensearch (3.x) clients: cluster info with the product header and
// version the clients check, index create/get/delete with mappings, _bulk with per-item
// errors, _search with sort/search_after/slices over a point in time, _pit (Elasticsearch)
// or _search/point_in_time (OpenSearch), _refresh, _count, and 401/403/404/429 bodies in
// the servers' formats. One index is one shard; documents are visible at once. JSON is read
// with the servers' strict duplicate detection: a document that repeats a key fails alone
// (400, "Duplicate field 'x'"), a request body that does fails the request (duplicate-keys.ts).

import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { type DuplicateKey, duplicateFieldMessage, findDuplicateKey } from './duplicate-keys.js'
import { SearchApiError } from './errors.js'
import {
  compareSortValues,
  compileQuery,
  type FieldMapping,
  type Json,
  type JsonObject,
  mappingAt,
  parseSort,
  type SortSpec,
  type StoredDoc,
  sortValue,
} from './query.js'

export type SearchFlavor = 'elasticsearch' | 'opensearch'

export interface SearchEmulatorOptions {
  flavor?: SearchFlavor
  /** The version GET / reports. Default 8.15.0 (Elasticsearch) or 2.17.0 (OpenSearch). */
  version?: string
  port?: number
  host?: string
  /** Users accepted with basic auth. With no users, keys and tokens, security is off. */
  users?: Record<string, string>
  /** API keys accepted as `Authorization: ApiKey <base64(id:key)>` (give the encoded form). */
  apiKeys?: string[]
  /** Tokens accepted as `Authorization: Bearer <token>`. */
  bearerTokens?: string[]
  /** Users (basic auth) refused every write with 403. */
  readOnlyUsers?: string[]
  /** http.max_content_length. Default 100 MiB. */
  maxContentLength?: number
}

export interface SearchFault {
  status: number
  times?: number
  /** Only requests whose path contains this text. */
  path?: string
  method?: string
  retryAfterSeconds?: number
}

export interface SearchRequestLog {
  method: string
  path: string
  status: number
  bytes: number
  /** Actions in a _bulk request. */
  actions?: number
}

interface IndexState {
  name: string
  uuid: string
  created: number
  mappings: { dynamic?: unknown; properties: Record<string, FieldMapping> }
  settings: Record<string, unknown>
  docs: Map<string, StoredDoc>
  nextOrdinal: number
  seqNo: number
}

interface PitState {
  id: string
  indices: string[]
  docs: { index: string; doc: StoredDoc; properties: Record<string, FieldMapping> }[]
  expiresAt: number
  created: number
  /** Sorted matches per (query, sort, slice): paging a point in time sorts it once. */
  sorted: Map<string, Matched[]>
}

interface Matched {
  hit: { index: string; doc: StoredDoc; properties: Record<string, FieldMapping> }
  values: (string | number | boolean | null)[]
}

const INDEX_NAME = /^[^-_+A-Z\\/*?"<>| ,#:][^A-Z\\/*?"<>| ,#:]*$/
const MAX_LOG = 100_000

function parseKeepAlive(value: unknown): number {
  if (value === undefined || value === null) return 5 * 60_000
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(String(value))
  if (!match)
    throw SearchApiError.parsing(
      `failed to parse setting [keep_alive] with value [${value}] as a time value`,
      'illegal_argument_exception',
    )
  const n = Number(match[1])
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms']
  return n * unit
}

function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Dynamic mapping of a new field from its first value, as the servers do by default. */
function dynamicMapping(value: Json): FieldMapping | undefined {
  if (value === null) return undefined
  if (Array.isArray(value)) {
    for (const item of value) {
      const m = dynamicMapping(item)
      if (m) return m
    }
    return undefined
  }
  switch (typeof value) {
    case 'boolean':
      return { type: 'boolean' }
    case 'number':
      return Number.isInteger(value) ? { type: 'long' } : { type: 'float' }
    case 'string':
      if (
        /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) &&
        !Number.isNaN(Date.parse(value))
      )
        return { type: 'date' }
      return { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } }
    default:
      return { properties: {} }
  }
}

class DocumentParsingError extends SearchApiError {}

export class SearchEmulatorServer {
  readonly flavor: SearchFlavor
  readonly version: string
  readonly indices = new Map<string, IndexState>()
  readonly pits = new Map<string, PitState>()
  readonly requests: SearchRequestLog[] = []
  private readonly faults: SearchFault[] = []
  private bulkRejections: { count: number; status: number }[] = []
  private shardFailures = 0
  private readonly server: Server
  private readonly options: SearchEmulatorOptions
  private readonly clusterUuid = randomBytes(11).toString('base64url')
  private origin = ''

  constructor(options: SearchEmulatorOptions = {}) {
    this.options = options
    this.flavor = options.flavor ?? 'elasticsearch'
    this.version = options.version ?? (this.flavor === 'opensearch' ? '2.17.0' : '8.15.0')
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error) => {
        if (!response.headersSent)
          this.sendError(response, new SearchApiError(500, 'exception', String(error)))
        else response.destroy()
      })
    })
    this.server.keepAliveTimeout = 30_000
  }

  get url(): string {
    return this.origin
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
    this.origin = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
    return { url: this.origin, port: address.port }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** Fail the next matching requests with a status (429 carries Retry-After when given). */
  failNext(fault: SearchFault): void {
    this.faults.push({ times: 1, ...fault })
  }

  /** Refuse the next `count` _bulk items with a per-item status (429 rejected execution, 503). */
  rejectBulkItems(count: number, status = 429): void {
    this.bulkRejections.push({ count, status })
  }

  /** The next `count` searches answer 200 with one of two shards failed (partial results). */
  failShardsNext(count = 1): void {
    this.shardFailures += count
  }

  /** Make every point in time expire now, as keep_alive running out would. */
  expirePits(): void {
    this.pits.clear()
  }

  createIndex(name: string, body: { mappings?: unknown; settings?: unknown } = {}): void {
    if (!INDEX_NAME.test(name) || name === '.' || name === '..' || Buffer.byteLength(name) > 255)
      throw new SearchApiError(
        400,
        'invalid_index_name_exception',
        `Invalid index name [${name}], must be lowercase and must not contain the characters \\, /, *, ?, ", <, >, |, space, comma, #, :`,
        { index: name, index_uuid: '_na_' },
      )
    if (this.indices.has(name))
      throw new SearchApiError(
        400,
        'resource_already_exists_exception',
        `index [${name}/${this.indices.get(name)!.uuid}] already exists`,
        { index: name },
      )
    const mappings = isPlainObject(body.mappings) ? body.mappings : {}
    for (const key of Object.keys(mappings)) {
      if (
        ![
          'properties',
          'dynamic',
          '_source',
          'dynamic_templates',
          'date_detection',
          'numeric_detection',
          '_meta',
        ].includes(key)
      )
        throw new SearchApiError(
          400,
          'mapper_parsing_exception',
          `Root mapping definition has unsupported parameters:  [${key} : ${JSON.stringify(mappings[key])}]`,
        )
    }
    const properties = (isPlainObject(mappings.properties) ? mappings.properties : {}) as Record<
      string,
      FieldMapping
    >
    this.checkMapping(properties, '')
    this.indices.set(name, {
      name,
      uuid: randomBytes(11).toString('base64url'),
      created: Date.now(),
      mappings: {
        ...(mappings.dynamic !== undefined ? { dynamic: mappings.dynamic } : {}),
        properties: structuredClone(properties),
      },
      settings: isPlainObject(body.settings) ? body.settings : {},
      docs: new Map(),
      nextOrdinal: 0,
      seqNo: 0,
    })
  }

  private checkMapping(properties: Record<string, FieldMapping>, prefix: string): void {
    const known = new Set([
      'text',
      'keyword',
      'long',
      'integer',
      'short',
      'byte',
      'double',
      'float',
      'half_float',
      'scaled_float',
      'unsigned_long',
      'date',
      'date_nanos',
      'boolean',
      'binary',
      'object',
      'nested',
      'flattened',
      'ip',
      'geo_point',
      'match_only_text',
      'wildcard',
      'constant_keyword',
      'version',
      this.flavor === 'opensearch' ? 'knn_vector' : 'dense_vector',
      ...(this.flavor === 'elasticsearch' ? ['sparse_vector', 'semantic_text'] : []),
    ])
    for (const [name, field] of Object.entries(properties)) {
      if (!isPlainObject(field))
        throw new SearchApiError(
          400,
          'mapper_parsing_exception',
          `Expected map for property [fields] on field [${prefix}${name}] but got a class java.lang.String`,
        )
      if (field.type !== undefined && !known.has(String(field.type)))
        throw new SearchApiError(
          400,
          'mapper_parsing_exception',
          `No handler for type [${field.type}] declared on field [${prefix}${name}]`,
        )
      if (field.properties)
        this.checkMapping(field.properties as Record<string, FieldMapping>, `${prefix}${name}.`)
    }
  }

  private resolve(expression: string, allowMissing = false): IndexState[] {
    const out: IndexState[] = []
    for (const part of decodeURIComponent(expression).split(',')) {
      if (part === '_all' || part === '*') {
        out.push(...[...this.indices.values()].filter((i) => !i.name.startsWith('.')))
        continue
      }
      if (part.includes('*')) {
        const re = new RegExp(
          `^${part
            .split('*')
            .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        )
        out.push(...[...this.indices.values()].filter((i) => re.test(i.name)))
        continue
      }
      const index = this.indices.get(part)
      if (!index) {
        if (allowMissing) continue
        throw SearchApiError.indexNotFound(part)
      }
      out.push(index)
    }
    return [...new Set(out)].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  // ---- HTTP --------------------------------------------------------------------------

  private headers(): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=UTF-8' }
    if (this.flavor === 'elasticsearch') headers['x-elastic-product'] = 'Elasticsearch'
    return headers
  }

  private send(
    response: ServerResponse,
    status: number,
    body: unknown,
    extra: Record<string, string> = {},
  ): void {
    const text = body === undefined ? '' : serialize(body)
    response.writeHead(status, {
      ...this.headers(),
      ...extra,
      'content-length': Buffer.byteLength(text),
    })
    response.end(text)
  }

  private sendError(response: ServerResponse, error: SearchApiError): void {
    this.send(response, error.status, error.body(), error.headers)
  }

  private authenticate(request: IncomingMessage, path: string): { user?: string } {
    const { users, apiKeys, bearerTokens } = this.options
    if (!users && !apiKeys && !bearerTokens) return {}
    const header = request.headers.authorization ?? ''
    const [scheme, value = ''] = header.split(' ')
    const same = (a: string, b: string) => {
      const x = Buffer.from(a)
      const y = Buffer.from(b)
      return x.length === y.length && timingSafeEqual(x, y)
    }
    let user: string | undefined
    let ok = false
    if (scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      user = decoded.slice(0, colon)
      const password = decoded.slice(colon + 1)
      ok = users?.[user] !== undefined && same(users[user]!, password)
    } else if (scheme?.toLowerCase() === 'apikey') {
      ok = (apiKeys ?? []).some((key) => same(key, value))
    } else if (scheme?.toLowerCase() === 'bearer') {
      ok = (bearerTokens ?? []).some((token) => same(token, value))
    }
    if (ok) return { user }
    if (this.flavor === 'opensearch') {
      // The security plugin answers a bare text body.
      throw Object.assign(new SearchApiError(401, 'security_exception', 'Unauthorized'), {
        plain: true,
      })
    }
    const challenge = {
      'WWW-Authenticate': [
        'Basic realm="security" charset="UTF-8"',
        'Bearer realm="security"',
        'ApiKey',
      ],
    }
    const reason = !header
      ? `missing authentication credentials for REST request [${path}]`
      : scheme?.toLowerCase() === 'basic'
        ? `unable to authenticate user [${user}] for REST request [${path}]`
        : 'unable to authenticate with provided credentials and anonymous access is not allowed for this request'
    throw new SearchApiError(
      401,
      'security_exception',
      reason,
      { header: challenge },
      { 'www-authenticate': 'Basic realm="security" charset="UTF-8", ApiKey' },
    )
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://emulator')
    const method = (request.method ?? 'GET').toUpperCase()
    let bytes = 0
    let status = 200
    let actions: number | undefined
    const log = () => {
      this.requests.push({
        method,
        path: url.pathname,
        status,
        bytes,
        ...(actions !== undefined ? { actions } : {}),
      })
      if (this.requests.length > MAX_LOG) this.requests.splice(0, this.requests.length - MAX_LOG)
    }
    try {
      const chunks: Buffer[] = []
      const limit = this.options.maxContentLength ?? 100 * 1024 * 1024
      for await (const chunk of request as AsyncIterable<Buffer>) {
        bytes += chunk.length
        if (bytes <= limit) chunks.push(chunk)
      }
      if (bytes > limit) {
        status = 413
        response.writeHead(413, { 'content-length': 0 })
        response.end()
        return
      }
      let raw = Buffer.concat(chunks)
      if (/gzip/i.test(String(request.headers['content-encoding'] ?? ''))) raw = gunzipSync(raw)
      const { user } = this.authenticate(request, url.pathname)
      const fault = this.faults.find(
        (f) => (!f.path || url.pathname.includes(f.path)) && (!f.method || f.method === method),
      )
      if (fault) {
        fault.times = (fault.times ?? 1) - 1
        if (fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1)
        const extra: Record<string, string> = {}
        if (fault.retryAfterSeconds !== undefined)
          extra['retry-after'] = String(fault.retryAfterSeconds)
        const type =
          fault.status === 429
            ? this.flavor === 'opensearch'
              ? 'rejected_execution_exception'
              : 'es_rejected_execution_exception'
            : fault.status === 503
              ? 'cluster_block_exception'
              : 'exception'
        throw new SearchApiError(fault.status, type, `emulated ${fault.status}`, {}, extra)
      }
      const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
      const write =
        method !== 'GET' &&
        method !== 'HEAD' &&
        !(
          segments.at(-1) === '_search' ||
          segments.at(-1) === '_count' ||
          segments.includes('_pit') ||
          segments.includes('point_in_time')
        )
      if (write && user && this.options.readOnlyUsers?.includes(user)) {
        const action = segments.includes('_bulk')
          ? 'indices:data/write/bulk'
          : 'indices:admin/create'
        throw new SearchApiError(
          403,
          'security_exception',
          `action [${action}] is unauthorized for user [${user}] with effective roles [viewer]`,
        )
      }
      const text = raw.toString('utf8')
      const result = this.route(method, segments, url.searchParams, text, (n) => {
        actions = n
      })
      status = result.status ?? 200
      if (method === 'HEAD') {
        response.writeHead(status, { ...this.headers(), 'content-length': 0 })
        response.end()
      } else {
        this.send(response, status, result.body)
      }
    } catch (error) {
      if (error instanceof SearchApiError) {
        status = error.status
        if ((error as { plain?: boolean }).plain) {
          response.writeHead(401, {
            'content-type': 'text/plain; charset=UTF-8',
            'www-authenticate': 'Basic realm="OpenSearch Security"',
          })
          response.end('Unauthorized')
        } else if (method === 'HEAD') {
          response.writeHead(status, { ...this.headers(), 'content-length': 0 })
          response.end()
        } else this.sendError(response, error)
      } else throw error
    } finally {
      log()
    }
  }

  private json(text: string): JsonObject {
    if (text.trim() === '') return {}
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
      if (!isPlainObject(parsed)) throw new Error('not an object')
    } catch {
      throw new SearchApiError(
        400,
        'x_content_parse_exception',
        '[1:1] Unexpected character: was expecting a JSON object',
      )
    }
    this.refuseDuplicateKey(text, parsed)
    return parsed
  }

  /** Whether the server is Elasticsearch 8+, whose parser wraps Jackson's errors (XContentParseException). */
  private wrapsParseErrors(): boolean {
    return this.flavor === 'elasticsearch' && Number(this.version.split('.')[0]) >= 8
  }

  /**
   * A request body (search, mapping, a bulk action line) that repeats a key fails the request
   * with 400, as the servers' strict duplicate detection does: Elasticsearch 8
   * x_content_parse_exception caused by json_parse_exception, OpenSearch json_parse_exception.
   */
  private refuseDuplicateKey(text: string, parsed: unknown): void {
    const duplicate = findDuplicateKey(text, parsed)
    if (!duplicate) return
    const message = duplicateFieldMessage(duplicate)
    if (this.wrapsParseErrors())
      throw new SearchApiError(
        400,
        'x_content_parse_exception',
        `[${duplicate.at.line}:${duplicate.at.column}] ${message}`,
        { caused_by: { type: 'json_parse_exception', reason: message } },
      )
    throw new SearchApiError(400, 'json_parse_exception', message)
  }

  /**
   * The per-item error for a document that repeats a key: Elasticsearch 8
   * document_parsing_exception "[l:c] failed to parse: [l:c] Duplicate field 'x' ..." caused
   * by x_content_parse_exception caused by json_parse_exception; OpenSearch (and
   * Elasticsearch 7) mapper_parsing_exception "failed to parse" caused by json_parse_exception.
   */
  private duplicateKeyDocumentError(duplicate: DuplicateKey): {
    type: string
    reason: string
    cause: JsonObject
  } {
    const message = duplicateFieldMessage(duplicate)
    const jackson = { type: 'json_parse_exception', reason: message }
    if (!this.wrapsParseErrors())
      return { type: 'mapper_parsing_exception', reason: 'failed to parse', cause: jackson }
    const parse = `[${duplicate.at.line}:${duplicate.at.column}] ${message}`
    return {
      type: 'document_parsing_exception',
      reason: `[${duplicate.token.line}:${duplicate.token.column}] failed to parse: ${parse}`,
      cause: { type: 'x_content_parse_exception', reason: parse, caused_by: jackson },
    }
  }

  private route(
    method: string,
    s: string[],
    query: URLSearchParams,
    text: string,
    setActions: (n: number) => void,
  ): { status?: number; body?: unknown } {
    const [a, b, c] = s
    if (s.length === 0) {
      if (method === 'GET' || method === 'HEAD') return { body: this.info() }
    }
    if (a === '_cluster' && b === 'health') return { body: this.health() }
    if (a === '_bulk' && s.length === 1) return this.bulk(undefined, text, query, setActions)
    if (a === '_search' && s.length === 1) return { body: this.search(undefined, this.json(text)) }
    if (a === '_pit' && method === 'DELETE' && this.flavor === 'elasticsearch') {
      const id = String(this.json(text).id ?? '')
      const found = this.pits.delete(id)
      return { status: found ? 200 : 404, body: { succeeded: found, num_freed: found ? 1 : 0 } }
    }
    if (
      a === '_search' &&
      b === 'point_in_time' &&
      method === 'DELETE' &&
      this.flavor === 'opensearch'
    ) {
      const ids = this.json(text).pit_id
      const list = Array.isArray(ids) ? ids.map(String) : [String(ids)]
      return {
        body: { pits: list.map((id) => ({ pit_id: id, successful: this.pits.delete(id) })) },
      }
    }
    if (a === '_data_stream' && method === 'GET') return { body: { data_streams: [] } }
    if (a === '_mapping' && s.length === 1) return { body: this.mappingsOf(this.resolve('*')) }
    if (a === '_refresh')
      return {
        body: { _shards: { total: this.indices.size, successful: this.indices.size, failed: 0 } },
      }
    if (a === '_count' && s.length === 1) return { body: this.count(undefined, this.json(text)) }
    if (a?.startsWith('_'))
      throw new SearchApiError(
        400,
        'illegal_argument_exception',
        `request [${method} /${s.join('/')}] contains unrecognized path`,
      )
    // /<index>/...
    const index = a!
    if (s.length === 1) {
      if (method === 'PUT') {
        this.createIndex(index, this.json(text))
        return { body: { acknowledged: true, shards_acknowledged: true, index } }
      }
      if (method === 'GET' || method === 'HEAD') {
        const found = this.resolve(index)
        const body: JsonObject = {}
        for (const i of found) {
          body[i.name] = {
            aliases: {},
            mappings: i.mappings as unknown as Json,
            settings: {
              index: {
                number_of_shards: '1',
                number_of_replicas: '1',
                uuid: i.uuid,
                provided_name: i.name,
                creation_date: String(i.created),
                ...(i.settings as JsonObject),
              },
            },
          }
        }
        return { body }
      }
      if (method === 'DELETE') {
        for (const i of this.resolve(index)) this.indices.delete(i.name)
        return { body: { acknowledged: true } }
      }
    }
    if (b === '_mapping' && (method === 'GET' || method === 'HEAD'))
      return { body: this.mappingsOf(this.resolve(index)) }
    if (b === '_mapping' && (method === 'PUT' || method === 'POST')) {
      const [target] = this.resolve(index)
      const props = this.json(text).properties
      if (isPlainObject(props)) {
        this.checkMapping(props as Record<string, FieldMapping>, '')
        Object.assign(target!.mappings.properties, props)
      }
      return { body: { acknowledged: true } }
    }
    if (b === '_refresh') {
      const list = this.resolve(index)
      return { body: { _shards: { total: list.length * 2, successful: list.length, failed: 0 } } }
    }
    if (b === '_count') return { body: this.count(index, this.json(text)) }
    if (b === '_bulk') return this.bulk(index, text, query, setActions)
    if (b === '_pit' && method === 'POST' && this.flavor === 'elasticsearch') {
      const pit = this.openPit(index, query.get('keep_alive'))
      return { body: { id: pit.id, _shards: { total: 1, successful: 1, skipped: 0, failed: 0 } } }
    }
    if (
      b === '_search' &&
      c === 'point_in_time' &&
      method === 'POST' &&
      this.flavor === 'opensearch'
    ) {
      const pit = this.openPit(index, query.get('keep_alive'))
      return {
        body: {
          pit_id: pit.id,
          _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
          creation_time: pit.created,
        },
      }
    }
    if (b === '_search' && s.length === 2) {
      const body = this.json(text)
      if (body.pit)
        throw SearchApiError.illegal(
          '[indices] cannot be used with point in time. Do not specify any index with point in time.',
        )
      return { body: this.search(index, body, query) }
    }
    if (
      (b === '_doc' || b === '_create') &&
      c !== undefined &&
      (method === 'PUT' || method === 'POST')
    ) {
      const op = b === '_create' || query.get('op_type') === 'create' ? 'create' : 'index'
      const line = `${JSON.stringify({ [op]: { _index: index, _id: c } })}\n${text.replace(/\n/g, ' ')}\n`
      const result = this.bulk(index, line, query, setActions).body as {
        items: Record<string, JsonObject>[]
      }
      const item = result.items[0]![op]!
      if (item.error) {
        const error = item.error as { type: string; reason: string; caused_by?: JsonObject }
        throw new SearchApiError(
          Number(item.status),
          error.type,
          error.reason,
          error.caused_by ? { caused_by: error.caused_by } : {},
        )
      }
      return { status: Number(item.status), body: item }
    }
    if (b === '_doc' && c !== undefined) {
      const [target] = this.resolve(index)
      if (method === 'GET' || method === 'HEAD') {
        const doc = target!.docs.get(c)
        if (!doc) return { status: 404, body: { _index: index, _id: c, found: false } }
        return {
          body: {
            _index: index,
            _id: c,
            _version: doc.version,
            _seq_no: doc.seqNo,
            _primary_term: 1,
            found: true,
            _source: new RawJson(doc.raw),
          },
        }
      }
    }
    throw new SearchApiError(
      405,
      'method_not_allowed',
      `Incorrect HTTP method for uri [/${s.join('/')}] and method [${method}]`,
    )
  }

  private info(): JsonObject {
    const version: JsonObject =
      this.flavor === 'opensearch'
        ? {
            distribution: 'opensearch',
            number: this.version,
            build_type: 'tar',
            build_hash: 'emulator',
            build_date: '2024-01-01T00:00:00Z',
            build_snapshot: false,
            lucene_version: '9.11.1',
            minimum_wire_compatibility_version: '7.10.0',
            minimum_index_compatibility_version: '7.0.0',
          }
        : {
            number: this.version,
            build_flavor: 'default',
            build_type: 'docker',
            build_hash: 'emulator',
            build_date: '2024-01-01T00:00:00Z',
            build_snapshot: false,
            lucene_version: '9.11.1',
            minimum_wire_compatibility_version: '7.17.0',
            minimum_index_compatibility_version: '7.0.0',
          }
    return {
      name: 'emulator-node',
      cluster_name: 'nvisy-emulator',
      cluster_uuid: this.clusterUuid,
      version,
      tagline:
        this.flavor === 'opensearch'
          ? 'The OpenSearch Project: https://opensearch.org/'
          : 'You Know, for Search',
    }
  }

  private health(): JsonObject {
    return {
      cluster_name: 'nvisy-emulator',
      status: 'green',
      timed_out: false,
      number_of_nodes: 1,
      number_of_data_nodes: 1,
      active_primary_shards: this.indices.size,
      active_shards: this.indices.size,
      relocating_shards: 0,
      initializing_shards: 0,
      unassigned_shards: 0,
      delayed_unassigned_shards: 0,
      number_of_pending_tasks: 0,
      number_of_in_flight_fetch: 0,
      task_max_waiting_in_queue_millis: 0,
      active_shards_percent_as_number: 100,
    }
  }

  private mappingsOf(list: IndexState[]): JsonObject {
    const body: JsonObject = {}
    for (const i of list) body[i.name] = { mappings: i.mappings as unknown as Json }
    return body
  }

  private openPit(expression: string, keepAlive: string | null): PitState {
    if (keepAlive === null)
      throw new SearchApiError(
        400,
        'action_request_validation_exception',
        'Validation Failed: 1: [keep_alive] is missing;',
      )
    const list = this.resolve(expression)
    const pit: PitState = {
      id: randomBytes(24).toString('base64url'),
      indices: list.map((i) => i.name),
      docs: list.flatMap((i) =>
        [...i.docs.values()].map((doc) => ({
          index: i.name,
          doc,
          properties: i.mappings.properties,
        })),
      ),
      expiresAt: Date.now() + parseKeepAlive(keepAlive),
      created: Date.now(),
      sorted: new Map(),
    }
    this.pits.set(pit.id, pit)
    return pit
  }

  private pitOf(spec: unknown): PitState {
    const id = String((spec as { id?: unknown })?.id ?? '')
    const pit = this.pits.get(id)
    if (!pit || pit.expiresAt < Date.now()) {
      this.pits.delete(id)
      const cause = {
        type: 'search_context_missing_exception',
        reason: `No search context found for id [${id.slice(0, 16)}]`,
      }
      throw new SearchApiError(
        404,
        'search_phase_execution_exception',
        'all shards failed',
        { phase: 'query', grouped: true },
        {},
        cause,
      )
    }
    const keepAlive = (spec as { keep_alive?: unknown }).keep_alive
    if (keepAlive !== undefined) pit.expiresAt = Date.now() + parseKeepAlive(keepAlive)
    return pit
  }

  private count(expression: string | undefined, body: JsonObject): JsonObject {
    const list = this.resolve(expression ?? '*')
    let count = 0
    for (const i of list) {
      const predicate = compileQuery(body.query, { properties: i.mappings.properties })
      for (const doc of i.docs.values()) if (predicate(doc)) count++
    }
    return {
      count,
      _shards: { total: list.length, successful: list.length, skipped: 0, failed: 0 },
    }
  }

  private search(
    expression: string | undefined,
    body: JsonObject,
    params?: URLSearchParams,
  ): JsonObject {
    const started = Date.now()
    for (const key of Object.keys(body)) {
      if (
        ![
          'query',
          'sort',
          'search_after',
          'size',
          'from',
          'pit',
          'slice',
          'track_total_hits',
          '_source',
          'seq_no_primary_term',
          'version',
          'timeout',
          'stored_fields',
          'docvalue_fields',
          'runtime_mappings',
        ].includes(key)
      )
        throw SearchApiError.parsing(`Unknown key for a START_OBJECT in [${key}].`)
    }
    let candidates: { index: string; doc: StoredDoc; properties: Record<string, FieldMapping> }[]
    let pit: PitState | undefined
    if (body.pit !== undefined) {
      pit = this.pitOf(body.pit)
      candidates = pit.docs
    } else {
      const list = this.resolve(expression ?? '*')
      candidates = list.flatMap((i) =>
        [...i.docs.values()].map((doc) => ({
          index: i.name,
          doc,
          properties: i.mappings.properties,
        })),
      )
    }
    const size = Number(body.size ?? params?.get('size') ?? 10)
    if (!Number.isInteger(size) || size < 0)
      throw SearchApiError.illegal(`[size] parameter cannot be negative, found [${size}]`)
    const from = Number(body.from ?? 0)
    if (size + from > 10_000)
      throw SearchApiError.illegal(
        `Result window is too large, from + size must be less than or equal to: [10000] but was [${from + size}]. See the scroll api for a more efficient way to request large data sets.`,
      )
    const sort: SortSpec[] = parseSort(body.sort)
    if (pit && !sort.some((s) => s.field === '_shard_doc'))
      sort.push({ field: '_shard_doc', order: 'asc' })
    const props = candidates[0]?.properties ?? {}
    for (const spec of sort) {
      if (spec.field === '_id' && this.flavor === 'elasticsearch')
        throw SearchApiError.illegal(
          'Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled',
        )
      if (spec.field.startsWith('_')) continue
      const type = mappingAt(props, spec.field)?.type
      if (type === 'text')
        throw SearchApiError.illegal(
          `Fielddata is disabled on [${spec.field}] in [${candidates[0]!.index}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [${spec.field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory.`,
        )
      if (type === 'dense_vector' || type === 'knn_vector' || type === 'object')
        throw SearchApiError.illegal(
          `Field [${spec.field}] of type [${type}] does not support sorting`,
        )
    }
    const searchAfter = body.search_after
    if (searchAfter !== undefined) {
      if (!Array.isArray(searchAfter))
        throw SearchApiError.parsing('[search_after] must be an array')
      if (sort.length === 0) throw SearchApiError.illegal('Sort must contain at least one field.')
      if (searchAfter.length !== sort.length)
        throw SearchApiError.illegal(
          `search_after has ${searchAfter.length} value(s) but sort has ${sort.length}.`,
        )
    }
    let sliceTest: ((doc: StoredDoc) => boolean) | undefined
    if (body.slice !== undefined) {
      const slice = body.slice as { id?: unknown; max?: unknown }
      const id = Number(slice.id)
      const max = Number(slice.max)
      if (!Number.isInteger(max) || max <= 1)
        throw SearchApiError.illegal('max must be greater than 1')
      if (!Number.isInteger(id) || id < 0 || id >= max)
        throw SearchApiError.illegal('id must be lower than max')
      // Slicing a point in time splits by _shard_doc.
      sliceTest = (doc) => doc.ordinal % max === id
    }
    const cacheKey = pit ? JSON.stringify([body.query, sort, body.slice]) : undefined
    const cached = cacheKey ? pit!.sorted.get(cacheKey) : undefined
    const matched: Matched[] = cached ?? []
    const predicates = new Map<Record<string, FieldMapping>, (doc: StoredDoc) => boolean>()
    for (const hit of cached ? [] : candidates) {
      let predicate = predicates.get(hit.properties)
      if (!predicate) {
        predicate = compileQuery(body.query, { properties: hit.properties })
        predicates.set(hit.properties, predicate)
      }
      if (sliceTest && !sliceTest(hit.doc)) continue
      if (!predicate(hit.doc)) continue
      matched.push({
        hit,
        values: sort.map((spec) => sortValue(hit.doc, spec, { properties: hit.properties })),
      })
    }
    const total = matched.length
    if (!cached && sort.length > 0)
      matched.sort((x, y) => compareSortValues(x.values, y.values, sort))
    if (cacheKey && !cached) pit!.sorted.set(cacheKey, matched)
    let page = matched
    if (Array.isArray(searchAfter)) {
      // The first match after search_after, by binary search over the sorted matches.
      let low = 0
      let high = matched.length
      while (low < high) {
        const mid = (low + high) >>> 1
        if (compareSortValues(matched[mid]!.values, searchAfter, sort) > 0) high = mid
        else low = mid + 1
      }
      page = matched.slice(low, low + from + size)
    }
    page = page.slice(from, from + size)
    const includes = body._source
    const hits = page.map(({ hit, values }) => {
      const out: JsonObject = {
        _index: hit.index,
        _id: hit.doc.id,
        _score: sort.length > 0 ? null : 1,
      }
      if (body.version === true) out._version = hit.doc.version
      if (body.seq_no_primary_term === true) {
        out._seq_no = hit.doc.seqNo
        out._primary_term = 1
      }
      if (includes === undefined || includes === true)
        (out as Record<string, unknown>)._source = new RawJson(hit.doc.raw)
      else if (includes !== false) out._source = filterSource(hit.doc.source, includes)
      if (sort.length > 0) out.sort = values
      return out
    })
    const result: JsonObject = {
      took: Date.now() - started,
      timed_out: false,
      _shards: { total: 1, successful: 1, skipped: 0, failed: 0 },
      hits: {
        ...(body.track_total_hits === false ? {} : { total: { value: total, relation: 'eq' } }),
        max_score: sort.length > 0 ? null : 1,
        hits,
      },
    }
    if (pit) result.pit_id = pit.id
    if (this.shardFailures > 0) {
      this.shardFailures--
      result._shards = {
        total: 2,
        successful: 1,
        skipped: 0,
        failed: 1,
        failures: [
          {
            shard: 1,
            index: candidates[0]?.index ?? null,
            node: 'emulator-node',
            reason: {
              type: 'node_not_connected_exception',
              reason: '[emulator-node-2] Node not connected',
            },
          },
        ],
      }
    }
    return result
  }

  private bulk(
    defaultIndex: string | undefined,
    text: string,
    params: URLSearchParams,
    setActions: (n: number) => void,
  ): { status?: number; body: unknown } {
    const started = Date.now()
    const lines = text.split('\n')
    if (lines.at(-1) === '') lines.pop()
    else if (lines.length > 0)
      throw SearchApiError.illegal('The bulk request must be terminated by a newline [\\n]')
    if (lines.length === 0)
      throw new SearchApiError(
        400,
        'action_request_validation_exception',
        'Validation Failed: 1: no requests added;',
      )
    const items: JsonObject[] = []
    let errors = false
    for (let i = 0; i < lines.length; i++) {
      let action: JsonObject
      try {
        action = JSON.parse(lines[i]!)
      } catch {
        throw new SearchApiError(
          400,
          'x_content_parse_exception',
          `[1:1] Unexpected character in bulk action line ${i + 1}`,
        )
      }
      this.refuseDuplicateKey(lines[i]!, action)
      const [op, meta] = Object.entries(action)[0] ?? []
      if (!op || !['index', 'create', 'update', 'delete'].includes(op) || !isPlainObject(meta))
        throw SearchApiError.illegal(
          `Malformed action/metadata line [${i + 1}], expected one of [create, delete, index, update] but found [${op}]`,
        )
      let source: JsonObject | undefined
      let rawSource: string | undefined
      let duplicate: DuplicateKey | undefined
      if (op !== 'delete') {
        const line = lines[++i]
        rawSource = line?.trim()
        try {
          source = JSON.parse(line ?? '')
        } catch {
          source = undefined
        }
        if (source !== undefined) {
          // An update body is parsed with the request, so a repeated key fails the request;
          // a document is parsed on its shard, so it fails the item alone (below).
          if (op === 'update') this.refuseDuplicateKey(line!, source)
          else duplicate = findDuplicateKey(line!, source)
        }
      }
      const indexName = String(meta._index ?? defaultIndex ?? '')
      let id = meta._id === undefined ? undefined : String(meta._id)
      const item = (status: number, extra: JsonObject): void => {
        items.push({ [op]: { _index: indexName, _id: id ?? null, status, ...extra } })
      }
      const fail = (status: number, type: string, reason: string, cause?: JsonObject) => {
        errors = true
        const index = this.indices.get(indexName)
        item(status, {
          error: {
            type,
            reason,
            index_uuid: index?.uuid ?? '_na_',
            shard: '0',
            index: indexName,
            ...(cause ? { caused_by: cause } : {}),
          },
        })
      }
      const rejection = this.bulkRejections[0]
      if (rejection) {
        if (--rejection.count <= 0) this.bulkRejections.shift()
        if (rejection.status === 429) {
          const type =
            this.flavor === 'opensearch'
              ? 'rejected_execution_exception'
              : 'es_rejected_execution_exception'
          fail(
            429,
            type,
            'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]',
          )
        } else
          fail(
            rejection.status,
            'unavailable_shards_exception',
            `[${indexName}][0] primary shard is not active Timeout: [1m]`,
          )
        continue
      }
      if (!indexName) {
        fail(400, 'action_request_validation_exception', 'Validation Failed: 1: index is missing;')
        continue
      }
      if (op !== 'delete' && !isPlainObject(source)) {
        fail(400, this.parsingType(), `[1:1] failed to parse: document is not a JSON object`)
        continue
      }
      let index = this.indices.get(indexName)
      if (!index) {
        if (op === 'delete') {
          fail(404, 'index_not_found_exception', `no such index [${indexName}]`)
          continue
        }
        try {
          this.createIndex(indexName)
        } catch (error) {
          if (!(error instanceof SearchApiError)) throw error
          fail(error.status, error.type, error.reason)
          continue
        }
        index = this.indices.get(indexName)!
      }
      if (id !== undefined && (id.length === 0 || Buffer.byteLength(id) > 512)) {
        fail(
          400,
          'illegal_argument_exception',
          `id [${id}] is too long, must be no longer than 512 bytes but was: ${Buffer.byteLength(id)}`,
        )
        continue
      }
      const existing = id === undefined ? undefined : index.docs.get(id)
      if (op === 'delete') {
        if (!existing) {
          item(404, { result: 'not_found', _version: 1 })
        } else {
          index.docs.delete(id!)
          item(200, {
            result: 'deleted',
            _version: existing.version + 1,
            _seq_no: ++index.seqNo,
            _primary_term: 1,
          })
        }
        continue
      }
      if (duplicate) {
        // Parsed on the shard, after the index exists and before any version check.
        const error = this.duplicateKeyDocumentError(duplicate)
        fail(400, error.type, error.reason, error.cause)
        continue
      }
      if (op === 'create' && existing) {
        fail(
          409,
          'version_conflict_engine_exception',
          `[${id}]: version conflict, document already exists (current version [${existing.version}])`,
        )
        continue
      }
      let doc = source!
      if (op === 'update') {
        if (!existing) {
          fail(404, 'document_missing_exception', `[${id}]: document missing`)
          continue
        }
        const partial = (source as { doc?: unknown }).doc
        doc = { ...existing.source, ...(isPlainObject(partial) ? partial : {}) }
      }
      try {
        this.applyMapping(index, doc)
      } catch (error) {
        if (!(error instanceof DocumentParsingError)) throw error
        fail(400, error.type, error.reason, error.causedBy as JsonObject | undefined)
        continue
      }
      if (id === undefined) id = randomBytes(15).toString('base64url')
      const stored: StoredDoc = {
        id,
        source: doc,
        raw: op === 'update' ? JSON.stringify(doc) : rawSource!,
        ordinal: existing?.ordinal ?? index.nextOrdinal++,
        version: (existing?.version ?? 0) + 1,
        seqNo: ++index.seqNo,
      }
      index.docs.set(id, stored)
      item(existing ? 200 : 201, {
        _version: stored.version,
        result: existing ? 'updated' : 'created',
        _shards: { total: 2, successful: 1, failed: 0 },
        _seq_no: stored.seqNo,
        _primary_term: 1,
      })
    }
    setActions(items.length)
    const refresh = params.get('refresh')
    if (refresh !== null && !['', 'true', 'false', 'wait_for'].includes(refresh))
      throw SearchApiError.illegal(`Unknown value for refresh: [${refresh}].`)
    return { body: { took: Date.now() - started, errors, items } }
  }

  private parsingType(): string {
    // Elasticsearch 8.8+ says document_parsing_exception; OpenSearch keeps mapper_parsing_exception.
    return this.flavor === 'elasticsearch' && Number(this.version.split('.')[0]) >= 8
      ? 'document_parsing_exception'
      : 'mapper_parsing_exception'
  }

  /** Check a document against the mapping and add dynamic fields, as indexing does. */
  private applyMapping(index: IndexState, source: JsonObject): void {
    const additions: [Record<string, FieldMapping>, string, FieldMapping][] = []
    const strict =
      index.mappings.dynamic === 'strict' ||
      index.mappings.dynamic === false ||
      index.mappings.dynamic === 'false'
    const walk = (
      value: JsonObject,
      properties: Record<string, FieldMapping>,
      prefix: string,
      dynamic: unknown,
    ) => {
      for (const [key, v] of Object.entries(value)) {
        const path = `${prefix}${key}`
        let field = properties[key]
        if (!field) {
          const staged = additions.find(([p, k]) => p === properties && k === key)
          field = staged?.[2]
        }
        if (!field) {
          if (dynamic === 'strict')
            throw new DocumentParsingError(
              400,
              'strict_dynamic_mapping_exception',
              `[1:2] mapping set to strict, dynamic introduction of [${key}] within [_doc] is not allowed`,
            )
          if (dynamic === false || dynamic === 'false') continue
          const mapping = dynamicMapping(v)
          if (!mapping) continue
          additions.push([properties, key, mapping])
          field = mapping
        }
        this.checkValue(path, field, v, (child, props) =>
          walk(child, props, `${path}.`, field!.dynamic ?? dynamic),
        )
      }
    }
    walk(
      source,
      index.mappings.properties,
      '',
      strict ? (index.mappings.dynamic === 'strict' ? 'strict' : false) : true,
    )
    for (const [properties, key, mapping] of additions) properties[key] ??= mapping
  }

  private checkValue(
    path: string,
    field: FieldMapping,
    value: Json,
    nested: (child: JsonObject, properties: Record<string, FieldMapping>) => void,
  ): void {
    if (value === null) return
    // enabled: false: the value is kept in _source and never parsed, whatever its shape.
    if (field.enabled === false) return
    const type = field.type ?? 'object'
    const bad = (what: string, reason: string) => {
      const cause = { type: what === 'illegal' ? 'illegal_argument_exception' : what, reason }
      throw new DocumentParsingError(
        400,
        this.parsingType(),
        `[1:2] failed to parse field [${path}] of type [${type}] in document. Preview of field's value: '${JSON.stringify(value).slice(0, 40)}'`,
        {},
        {},
        cause,
      )
    }
    if (type === 'dense_vector' || type === 'knn_vector') {
      const dims = Number(field.dims ?? field.dimension ?? 0)
      if (!Array.isArray(value) || value.some((x) => typeof x !== 'number'))
        bad('illegal', `[${type}] field [${path}] must be an array of numbers`)
      if (dims > 0 && (value as Json[]).length !== dims)
        bad(
          'illegal',
          `The [${type}] field [${path}] in doc has a different number of dimensions [${(value as Json[]).length}] than defined in the mapping [${dims}]`,
        )
      return
    }
    if (Array.isArray(value)) {
      for (const item of value) this.checkValue(path, field, item, nested)
      return
    }
    switch (type) {
      case 'object':
      case 'nested':
        if (!isPlainObject(value))
          throw new DocumentParsingError(
            400,
            this.parsingType(),
            `[1:2] object mapping for [${path}] tried to parse field [${path}] as object, but found a concrete value`,
          )
        field.properties ??= {}
        nested(value, field.properties)
        return
      case 'flattened':
        return
      case 'long':
      case 'integer':
      case 'short':
      case 'byte':
      case 'unsigned_long': {
        const n =
          typeof value === 'number'
            ? value
            : typeof value === 'string' && value.trim() !== ''
              ? Number(value)
              : Number.NaN
        if (Number.isNaN(n) || typeof value === 'boolean')
          bad('illegal', `For input string: "${String(value)}"`)
        // `coerce` (on by default) truncates a fraction; with coerce: false it is refused.
        if (!Number.isInteger(n) && field.coerce === false)
          bad('illegal', `Value [${value}] has a decimal part`)
        return
      }
      case 'double':
      case 'float':
      case 'half_float':
      case 'scaled_float': {
        const n =
          typeof value === 'number'
            ? value
            : typeof value === 'string' && value.trim() !== ''
              ? Number(value)
              : Number.NaN
        if (Number.isNaN(n)) bad('illegal', `For input string: "${String(value)}"`)
        return
      }
      case 'boolean':
        if (!(typeof value === 'boolean' || value === 'true' || value === 'false' || value === ''))
          bad(
            'illegal',
            `Failed to parse value [${String(value)}] as only [true] or [false] are allowed.`,
          )
        return
      case 'date':
      case 'date_nanos':
        if (typeof value === 'number') return
        if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
          bad(
            'illegal',
            `failed to parse date field [${String(value)}] with format [strict_date_optional_time||epoch_millis]`,
          )
        return
      default:
        if (isPlainObject(value))
          bad('illegal', `Can't get text on a START_OBJECT at 1:${path.length + 5}`)
    }
  }
}

/** JSON text sent as is (a stored _source), inside a body that is otherwise serialized. */
class RawJson {
  constructor(readonly text: string) {}
}

function serialize(body: unknown): string {
  const raws: string[] = []
  const marker = `\u0000raw${randomBytes(4).toString('hex')}:`
  const text = JSON.stringify(body, (_key, value) => {
    if (value instanceof RawJson) {
      raws.push(value.text)
      return `${marker}${raws.length - 1}`
    }
    return value
  })
  if (raws.length === 0) return text
  const escaped = JSON.stringify(marker).slice(1, -1)
  return text.replace(
    new RegExp(`"${escaped.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}(\\d+)"`, 'g'),
    (_m, i: string) => raws[Number(i)]!,
  )
}

function filterSource(source: JsonObject, includes: unknown): JsonObject {
  if (includes === undefined || includes === true) return source
  const list = Array.isArray(includes)
    ? includes.map(String)
    : typeof includes === 'string'
      ? [includes]
      : isPlainObject(includes) && Array.isArray(includes.includes)
        ? includes.includes.map(String)
        : undefined
  if (!list) return source
  const out: JsonObject = {}
  for (const key of Object.keys(source)) {
    if (
      list.some(
        (pattern) =>
          pattern === key ||
          pattern === '*' ||
          (pattern.endsWith('*') && key.startsWith(pattern.slice(0, -1))) ||
          pattern.startsWith(`${key}.`),
      )
    )
      out[key] = source[key]!
  }
  return out
}

export interface SearchEmulator {
  url: string
  port: number
  server: SearchEmulatorServer
  close(): Promise<void>
}

/** Start a search emulator on a free port (or `options.port`). */
export async function startSearchEmulator(
  options: SearchEmulatorOptions = {},
): Promise<SearchEmulator> {
  const server = new SearchEmulatorServer(options)
  const { url, port } = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  return { url, port, server, close: () => server.close() }
}
