import { Destination, ObjectKeyRangeSchema, Secret, type Static, Type } from '@nvisy/provider-core'

export const GcsCredentialsSchema = Type.Object(
  {
    serviceAccountJson: Type.Optional(
      Secret(
        Type.String({
          minLength: 2,
          description:
            'The service account key file (JSON) content; omit for application default credentials',
        }),
      ),
    ),
  },
  { additionalProperties: false },
)
export type GcsCredentials = Static<typeof GcsCredentialsSchema>
/** @deprecated use GcsCredentialsSchema */
export const GcsCredentials = GcsCredentialsSchema

export const GcsParamsSchema = Type.Object(
  {
    bucket: Destination(Type.String({ minLength: 3, maxLength: 222, description: 'Bucket name' })),
    projectId: Destination(
      Type.Optional(
        Type.String({ minLength: 1, description: 'Project id (default: from the credentials)' }),
      ),
    ),
    apiEndpoint: Destination(
      Type.Optional(
        Type.String({
          format: 'uri',
          description: 'API endpoint override (a private endpoint or an emulator)',
        }),
      ),
    ),
    requestTimeoutMs: Type.Integer({ minimum: 100, default: 120_000 }),
    maxRetries: Type.Integer({
      minimum: 0,
      maximum: 10,
      default: 3,
      description: 'Client retries per request',
    }),
  },
  { additionalProperties: false },
)
export type GcsParams = Static<typeof GcsParamsSchema>
/** @deprecated use GcsParamsSchema */
export const GcsParams = GcsParamsSchema

export const GcsStreamSchema = Type.Object(
  {
    prefix: Type.String({ default: '', description: 'Only objects under this prefix' }),
    glob: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Only names (relative to the prefix) matching this glob',
      }),
    ),
    suffix: Type.Optional(
      Type.String({ minLength: 1, description: 'Only names ending with this' }),
    ),
    startAfter: Type.Optional(Type.String({ description: 'Only names after this one' })),
    range: Type.Optional(ObjectKeyRangeSchema),
    modifiedSince: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'Only objects updated at or after this instant (watermark)',
      }),
    ),
    pageSize: Type.Integer({ minimum: 1, maximum: 5000, default: 1000 }),
  },
  { additionalProperties: false },
)
export type GcsStream = Static<typeof GcsStreamSchema>
/** @deprecated use GcsStreamSchema */
export const GcsStream = GcsStreamSchema

export const GcsContextSchema = Type.Object(
  {
    key: Type.String({
      description: 'The last object name delivered; a resumed read starts after it',
    }),
  },
  { additionalProperties: false },
)
export type GcsContext = Static<typeof GcsContextSchema>
/** @deprecated use GcsContextSchema */
export const GcsContext = GcsContextSchema

export const GcsSinkStreamSchema = Type.Object(
  {
    prefix: Type.String({ default: '', description: 'Prepended to every blob key' }),
    createOnly: Type.Boolean({
      default: false,
      description:
        'Never overwrite: an existing name is a data failure for that blob (ifGenerationMatch: 0)',
    }),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 4,
      description: 'Objects uploaded at once per batch',
    }),
    resumableThresholdBytes: Type.Integer({
      minimum: 0,
      default: 8 * 1024 * 1024,
      description: 'Bodies larger than this (or of unknown size) use a resumable upload',
    }),
  },
  { additionalProperties: false },
)
export type GcsSinkStream = Static<typeof GcsSinkStreamSchema>
/** @deprecated use GcsSinkStreamSchema */
export const GcsSinkStream = GcsSinkStreamSchema
