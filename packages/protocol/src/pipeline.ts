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
    convert: Type.Optional(Type.Union([Type.Literal('jsonl'), Type.Literal('csv')])),
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
        description: 'item failures allowed before the run fails; null or absent: unlimited',
      }),
    ),
    queueCapacity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
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
