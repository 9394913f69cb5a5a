import { Destination, Secret, type Static, Type } from '@nvisy/provider-core'

export const PineconeCredentialsSchema = Type.Object(
  {
    apiKey: Secret(Type.String({ minLength: 1, description: 'Pinecone API key' })),
  },
  { additionalProperties: false },
)
export type PineconeCredentials = Static<typeof PineconeCredentialsSchema>

/** Index names: lower-case letters, digits and dashes, at most 45 characters. */
const INDEX_NAME_PATTERN = '^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$'

export const PineconeParamsSchema = Type.Object(
  {
    index: Destination(
      Type.Optional(
        Type.String({
          pattern: INDEX_NAME_PATTERN,
          description: 'Index name; its host is looked up with describeIndex. Give this or `host`.',
        }),
      ),
    ),
    host: Destination(
      Type.Optional(
        Type.String({
          minLength: 1,
          pattern: '^(https?://)?[^\\s/]+(/\\S*)?$',
          description:
            'Index host (data plane), e.g. my-index-abc123.svc.aped-4627-b74a.pinecone.io. Give this or `index`.',
        }),
      ),
    ),
    namespace: Type.Optional(
      Type.String({
        description:
          'Default namespace for streams that name none. Default "" (the default namespace).',
      }),
    ),
    controlPlaneUrl: Destination(
      Type.Optional(
        Type.String({
          pattern: '^https?://\\S+$',
          description: 'Control-plane URL override. Default https://api.pinecone.io.',
        }),
      ),
    ),
    maxRetries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        description: 'SDK retries of a 5xx answer before the error reaches the runtime. Default 2.',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PineconeParams = Static<typeof PineconeParamsSchema>

export const PineconeStreamSchema = Type.Object(
  {
    namespace: Type.Optional(
      Type.String({ description: 'Namespace to read; default the params namespace.' }),
    ),
    prefix: Type.Optional(
      Type.String({ description: 'Read only ids that start with this prefix.' }),
    ),
    pageSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        description: 'Ids listed (and fetched) per request. Default 100.',
      }),
    ),
    values: Type.Optional(
      Type.Union([Type.Literal('array'), Type.Literal('float32')], {
        description: 'Dense values as number[] (default) or Float32Array.',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PineconeStream = Static<typeof PineconeStreamSchema>

export const PineconeContextSchema = Type.Object(
  {
    /** The pagination token of the list page the item came from; null for the first page. */
    token: Type.Union([Type.String(), Type.Null()]),
    /** The item's id: a resume skips ids that sort at or before it (byte order). */
    lastId: Type.String(),
  },
  { additionalProperties: false },
)
export type PineconeContext = Static<typeof PineconeContextSchema>

export const PineconeSinkStreamSchema = Type.Object(
  {
    namespace: Type.Optional(
      Type.String({ description: 'Namespace to write; default the params namespace.' }),
    ),
    dimension: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Expected vector dimension; checked against the index before the first write.',
      }),
    ),
    maxBatchVectors: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'Vectors per upsert request. Default 1000.',
      }),
    ),
    concurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 32,
        description: 'Upsert requests in flight. Default 4.',
      }),
    ),
  },
  { additionalProperties: false },
)
export type PineconeSinkStream = Static<typeof PineconeSinkStreamSchema>
