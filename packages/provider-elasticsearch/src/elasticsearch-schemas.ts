import { Destination, LocalPath, Secret, type Static, Type } from '@nvisy/provider-core'

/**
 * Credentials: an API key (the encoded `id:key` form Kibana shows), a user and password
 * (basic auth), or a bearer token (a service-account or OAuth token). At most one kind.
 */
export const ElasticsearchCredentialsSchema = Type.Object(
  {
    apiKey: Type.Optional(
      Secret(
        Type.String({
          minLength: 1,
          description: 'API key, encoded (base64 of id:api_key), sent as Authorization: ApiKey',
        }),
      ),
    ),
    username: Type.Optional(Type.String({ minLength: 1, description: 'User for basic auth' })),
    password: Type.Optional(Secret(Type.String({ minLength: 1, description: 'Password' }))),
    bearerToken: Type.Optional(
      Secret(
        Type.String({
          minLength: 1,
          description: 'Bearer token (service account or OAuth), sent as Authorization: Bearer',
        }),
      ),
    ),
  },
  { additionalProperties: false },
)
export type ElasticsearchCredentials = Static<typeof ElasticsearchCredentialsSchema>

const NODE_URL = '^https?://[^\\s/@]+(/\\S*)?$'
const NodeUrl = Type.String({
  pattern: NODE_URL,
  description: 'http(s)://host:port, without user or password',
})

export const ElasticsearchParamsSchema = Type.Object(
  {
    url: Type.Optional(
      Destination(
        Type.String({
          pattern: NODE_URL,
          description: 'Cluster URL (https://host:9200), without user or password',
        }),
      ),
    ),
    nodes: Type.Optional(
      Destination(
        Type.Array(NodeUrl, {
          minItems: 1,
          maxItems: 100,
          description: 'Node URLs, used in turn (give this or url)',
        }),
      ),
    ),
    caFile: Type.Optional(
      Destination(
        LocalPath(
          Type.String({ minLength: 1, description: 'Path of a PEM file of CAs to trust (TLS)' }),
        ),
      ),
    ),
    caFingerprint: Type.Optional(
      Destination(
        Type.String({
          pattern: '^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$',
          description:
            'SHA-256 fingerprint of the CA that signed the server certificate (hex, colons optional)',
        }),
      ),
    ),
    rejectUnauthorized: Type.Optional(
      Destination(
        Type.Boolean({
          default: true,
          description: 'Verify the server certificate (turn off only for a test cluster)',
        }),
      ),
    ),
    requestTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 600_000,
        default: 30_000,
        description: 'Timeout of one request; a timeout is a transient error',
      }),
    ),
    maxRetries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        default: 3,
        description: "The client's retries of a request on connection errors and 502/503/504",
      }),
    ),
  },
  { additionalProperties: false },
)
export type ElasticsearchParams = Static<typeof ElasticsearchParamsSchema>

const IndexName = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[^A-Z\\\\/?"<>| ,#:]+$',
  description: 'Index, alias or data stream name',
})

const KEEP_ALIVE = '^[1-9][0-9]*(ms|s|m|h)$'

/** Source stream settings. */
export const ElasticsearchStreamSchema = Type.Object(
  {
    index: Type.String({
      minLength: 1,
      maxLength: 1000,
      pattern: '^[^A-Z\\\\/?"<>| #:]+$',
      description: 'Index, alias, data stream, a comma list or a pattern (logs-*)',
    }),
    query: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'A query DSL filter ({"term":{"status":"active"}}); only matching documents are read',
      }),
    ),
    sortField: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^_]',
        description:
          'A sortable field (keyword, numeric, date) unique per document that only grows (a sequence, an ingest time with a unique id): reads sort by it, resume with a range after it (so contexts outlive the point in time) and pick up new documents (incremental). Without it reads follow _shard_doc within one point in time.',
      }),
    ),
    tiebreakField: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'With sortField: a second sort key (a keyword or numeric field unique per document, e.g. a copy of the id) for a sortField that is growing but not unique (a timestamp): reads sort by [sortField, tiebreakField] and resume after that pair',
      }),
    ),
    pageSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        default: 1000,
        description: 'Documents per search request',
      }),
    ),
    keepAlive: Type.Optional(
      Type.String({
        pattern: KEEP_ALIVE,
        default: '5m',
        description: 'How long the point in time lives between pages (1m, 5m...)',
      }),
    ),
    slice: Type.Optional(
      Type.Object(
        {
          id: Type.Integer({ minimum: 0, description: 'This slice, 0 .. max-1' }),
          max: Type.Integer({ minimum: 2, maximum: 1024, description: 'Number of slices' }),
        },
        {
          additionalProperties: false,
          description: 'Read one of max disjoint slices of the point in time',
        },
      ),
    ),
    data: Type.Optional(
      Type.Union([Type.Literal('document'), Type.Literal('embedding')], {
        default: 'document',
        description:
          "'document' (the _source) or 'embedding' (vectorField as values, the rest as metadata)",
      }),
    ),
    vectorField: Type.Optional(
      Type.String({ minLength: 1, description: 'The dense_vector field, for data: embedding' }),
    ),
    sourceIncludes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          'Only these _source fields (patterns allowed); sortField and vectorField are kept',
      }),
    ),
  },
  { additionalProperties: false },
)
export type ElasticsearchStream = Static<typeof ElasticsearchStreamSchema>

/**
 * Resume after a document. With a `sortField`: its value (`key`) and `_id`. Without: the
 * point in time and the hit's sort values (`_shard_doc`), valid while the point in time lives.
 */
export const ElasticsearchContextSchema = Type.Object(
  {
    id: Type.String({ description: 'The _id of the document' }),
    key: Type.Optional(Type.Unknown({ description: "The sortField's sort value" })),
    tie: Type.Optional(Type.Unknown({ description: "The tiebreakField's sort value" })),
    pit: Type.Optional(Type.String({ description: 'The point in time the read ran in' })),
    after: Type.Optional(
      Type.Array(Type.Unknown(), { description: "The hit's sort values (search_after)" }),
    ),
    end: Type.Optional(
      Type.Literal(true, { description: 'The last document of a finished _shard_doc read' }),
    ),
  },
  { additionalProperties: false },
)
export type ElasticsearchContext = Static<typeof ElasticsearchContextSchema>

/** Sink stream settings. */
export const ElasticsearchSinkStreamSchema = Type.Object(
  {
    index: IndexName,
    action: Type.Optional(
      Type.Union([Type.Literal('index'), Type.Literal('create')], {
        default: 'index',
        description:
          "'index' replaces a document with the same _id (idempotent); 'create' refuses an existing _id (a version conflict, reported per item)",
      }),
    ),
    refresh: Type.Optional(
      Type.Union([Type.Literal('false'), Type.Literal('true'), Type.Literal('wait_for')], {
        default: 'false',
        description: 'Refresh policy of each _bulk request',
      }),
    ),
    data: Type.Optional(
      Type.Union([Type.Literal('document'), Type.Literal('embedding')], {
        default: 'document',
        description:
          "What the sink takes: 'document' (content is the _source) or 'embedding' (values go to vectorField, metadata to the other fields)",
      }),
    ),
    idField: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Take _id from this content field instead of the item id',
      }),
    ),
    vectorField: Type.Optional(
      Type.String({
        minLength: 1,
        default: 'embedding',
        description: 'The field an embedding item stores its values in',
      }),
    ),
    mappings: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Mapping ({"properties":{...}}) used to create the index when it is missing',
      }),
    ),
    settings: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Index settings used with mappings when the index is created',
      }),
    ),
    maxBulkBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        maximum: 100 * 1024 * 1024,
        default: 5 * 1024 * 1024,
        description:
          'A _bulk request closes at this many bytes (the server refuses bodies over http.max_content_length, 100 MiB by default)',
      }),
    ),
    maxBulkItems: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 1000,
        description: 'A _bulk request closes at this many documents',
      }),
    ),
    maxItemRetries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 20,
        default: 5,
        description: 'Retries, with backoff, of items the server rejects with 429 (or 503)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type ElasticsearchSinkStream = Static<typeof ElasticsearchSinkStreamSchema>
