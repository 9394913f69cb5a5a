import { type Static, Type } from '@nvisy/provider-core'
import { NODE_ID_PATTERN, PIPELINE_ID_PATTERN, PROVIDER_ID_PATTERN } from './subjects.js'

/** Largest sealed credentials blob accepted, base64 characters. */
export const MAX_SEALED_CREDENTIALS_LENGTH = 65_536
export const MAX_NODES = 64
export const MAX_EDGES = 256

/** A JSON object whose keys are free: provider settings, validated later by the provider's own schema. */
export const JsonObject = <T extends Record<string, unknown> = Record<string, unknown>>(
  options: { description?: string; maxProperties?: number } = {},
) => Type.Unsafe<T>({ type: 'object', maxProperties: 256, ...options })

export const NodeIdSchema = Type.String({ pattern: NODE_ID_PATTERN, description: 'node id' })
export const PipelineIdSchema = Type.String({
  pattern: PIPELINE_ID_PATTERN,
  description: 'pipeline id',
})
export const ProviderIdSchema = Type.String({
  pattern: PROVIDER_ID_PATTERN,
  description: 'provider id',
})

export const ConnectionSpecSchema = Type.Object(
  {
    params: JsonObject({
      description: "connection parameters, valid against the provider's params schema",
    }),
    credentials: Type.Optional(
      JsonObject({
        description: 'plain credentials: accepted only by a runtime started with its dev flag',
      }),
    ),
    sealedCredentials: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9+/]+={0,2}$',
        minLength: 4,
        maxLength: MAX_SEALED_CREDENTIALS_LENGTH,
        description:
          "base64 of the sealed credentials v2 (schema credentials.sealed: the credentials bound to this run node or request, its provider, destination params, expiry and a nonce), sealed with the server's xkey to the runtime's public key",
      }),
    ),
    connectionId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false },
)
export type ConnectionSpec = Static<typeof ConnectionSpecSchema>

export const BatchLimitsSchema = Type.Object(
  {
    maxItems: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    maxBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_073_741_824 })),
    maxAgeMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
)

const ConvertFormatSchema = Type.Union([Type.Literal('jsonl'), Type.Literal('csv')])

const scalarColumnTypes = [
  Type.Object({ type: Type.Literal('boolean') }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('integer'),
      bits: Type.Union([8, 16, 24, 32, 64].map((n) => Type.Literal(n))),
      unsigned: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('decimal'),
      precision: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
      scale: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
      unsigned: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('float'),
      bits: Type.Union([Type.Literal(32), Type.Literal(64)]),
      unsigned: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('bits'),
      length: Type.Integer({ minimum: 1, maximum: 83_886_080 }),
      varying: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  ...(['text', 'binary'] as const).map((name) =>
    Type.Object(
      {
        type: Type.Literal(name),
        maxLength: Type.Optional(Type.Integer({ minimum: 1 })),
        fixed: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
  ),
  ...(['date', 'year', 'uuid'] as const).map((name) =>
    Type.Object({ type: Type.Literal(name) }, { additionalProperties: false }),
  ),
  Type.Object(
    {
      type: Type.Literal('time'),
      precision: Type.Optional(Type.Integer({ minimum: 0, maximum: 9 })),
      withTimeZone: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('duration'),
      precision: Type.Optional(Type.Integer({ minimum: 0, maximum: 9 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('timestamp'),
      precision: Type.Optional(Type.Integer({ minimum: 0, maximum: 9 })),
      withTimeZone: Type.Boolean(),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { type: Type.Literal('json'), binary: Type.Optional(Type.Boolean()) },
    { additionalProperties: false },
  ),
  ...(['enum', 'set'] as const).map((name) =>
    Type.Object(
      {
        type: Type.Literal(name),
        values: Type.Array(Type.String({ maxLength: 1024 }), { minItems: 1, maxItems: 65_535 }),
      },
      { additionalProperties: false },
    ),
  ),
]

/**
 * A portable column type (provider-core `ColumnType`) as a pipeline declares it. Arrays nest
 * one level (an array of a scalar type); `other` is not declarable.
 */
export const ColumnTypeSchema = Type.Union([
  ...scalarColumnTypes,
  Type.Object(
    { type: Type.Literal('array'), of: Type.Union(scalarColumnTypes) },
    { additionalProperties: false },
  ),
])

/** One column of a declared record shape (document -> record). */
export const DeclaredColumnSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    type: ColumnTypeSchema,
    nullable: Type.Optional(Type.Boolean({ description: 'default true' })),
    field: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description:
          "the document field the value comes from (default: the column name); '$id' is the document id",
      }),
    ),
  },
  { additionalProperties: false },
)
export type DeclaredColumn = Static<typeof DeclaredColumnSchema>

/** How a record becomes an embedding (record -> embedding): which columns are the id and the vector. */
export const EmbeddingOptionsSchema = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: 128,
      description:
        'the column whose value is the embedding id (text, or an integer written as its digits)',
    }),
    vector: Type.String({
      minLength: 1,
      maxLength: 128,
      description:
        "the column holding the dense vector: a number array (real[], float8[], a JSON array) or vector text such as pgvector's '[1,2,3]'",
    }),
    dimension: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65_536,
        description:
          'the number of values every vector must have; a vector of another length is refused',
      }),
    ),
    metadata: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
        maxItems: 4096,
        description:
          'the columns copied into the metadata (default: every column but id and vector); null values are left out',
      }),
    ),
  },
  { additionalProperties: false },
)
export type EmbeddingOptions = Static<typeof EmbeddingOptionsSchema>

/** Conversion options of a sink node (see the runtime README, "Conversions"). */
export const ConvertOptionsSchema = Type.Object(
  {
    format: Type.Optional(ConvertFormatSchema),
    columns: Type.Optional(
      Type.Array(DeclaredColumnSchema, {
        minItems: 1,
        maxItems: 4096,
        description: 'document -> record: the declared columns of each record',
      }),
    ),
    key: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
        minItems: 1,
        maxItems: 64,
        description:
          "record -> message: the columns whose values make the message id; document -> record: the destination's primary key",
      }),
    ),
    embedding: Type.Optional(EmbeddingOptionsSchema),
  },
  { additionalProperties: false },
)
export type ConvertOptions = Static<typeof ConvertOptionsSchema>

export const PipelineNodeSchema = Type.Object(
  {
    id: NodeIdSchema,
    role: Type.Union([Type.Literal('source'), Type.Literal('sink')]),
    provider: ProviderIdSchema,
    connection: ConnectionSpecSchema,
    stream: JsonObject({
      description: "stream settings, valid against the provider's stream schema",
    }),
    batch: Type.Optional(BatchLimitsSchema),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    convert: Type.Optional(
      Type.Union([ConvertFormatSchema, ConvertOptionsSchema], {
        description:
          "how items of another kind are converted for this sink: a blob format ('jsonl' or 'csv'), or the conversion options",
      }),
    ),
    deadLetter: Type.Optional(NodeIdSchema),
  },
  { additionalProperties: false },
)
export type PipelineNode = Static<typeof PipelineNodeSchema>

export const PipelineEdgeSchema = Type.Object(
  { from: NodeIdSchema, to: NodeIdSchema },
  { additionalProperties: false },
)
export type PipelineEdge = Static<typeof PipelineEdgeSchema>

export const PipelineOptionsSchema = Type.Object(
  {
    checkpointEveryItems: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000 })),
    checkpointEverySeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3600 })),
    failureBudget: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
        description:
          'items refused (not written to their sink nor to a dead-letter sink) that a run may let through; such a run ends partial. Absent: 0 (the first refused item fails the run); null: unlimited',
      }),
    ),
    queueCapacity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    passThrough: Type.Optional(
      Type.Boolean({
        description:
          'move rows between a source and a sink that speak the same wire format with the same column types as they are, without decoding them (PostgreSQL -> PostgreSQL COPY text); default true, false decodes every row',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PipelineOptions = Static<typeof PipelineOptionsSchema>

export const PipelineSchema = Type.Object(
  {
    id: PipelineIdSchema,
    nodes: Type.Array(PipelineNodeSchema, { minItems: 1, maxItems: MAX_NODES }),
    edges: Type.Array(PipelineEdgeSchema, { maxItems: MAX_EDGES }),
    options: Type.Optional(PipelineOptionsSchema),
  },
  { additionalProperties: false },
)
export type Pipeline = Static<typeof PipelineSchema>
