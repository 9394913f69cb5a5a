import { Destination, ObjectKeyRangeSchema, Secret, type Static, Type } from '@nvisy/provider-core'

export const S3CredentialsSchema = Type.Object(
  {
    accessKeyId: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Access key id; omit to use the default credential chain',
      }),
    ),
    secretAccessKey: Type.Optional(
      Secret(Type.String({ minLength: 1, description: 'Secret access key' })),
    ),
    sessionToken: Type.Optional(
      Secret(Type.String({ minLength: 1, description: 'Session token of temporary credentials' })),
    ),
  },
  {
    additionalProperties: false,
    dependencies: {
      accessKeyId: ['secretAccessKey'],
      secretAccessKey: ['accessKeyId'],
      sessionToken: ['accessKeyId'],
    },
    description:
      'Static keys, or nothing for the default AWS credential chain (environment, profile, instance role)',
  },
)
export type S3Credentials = Static<typeof S3CredentialsSchema>
/** @deprecated use S3CredentialsSchema */
export const S3Credentials = S3CredentialsSchema

export const S3ParamsSchema = Type.Object(
  {
    bucket: Destination(Type.String({ minLength: 3, maxLength: 255, description: 'Bucket name' })),
    region: Destination(Type.String({ minLength: 1, default: 'us-east-1' })),
    endpoint: Destination(
      Type.Optional(
        Type.String({ format: 'uri', description: 'Endpoint of an S3-compatible server' }),
      ),
    ),
    forcePathStyle: Destination(
      Type.Optional(
        Type.Boolean({ description: 'Path-style addressing (most S3-compatible servers need it)' }),
      ),
    ),
    checksums: Type.Optional(
      Type.Union([Type.Literal('when_supported'), Type.Literal('when_required')], {
        description:
          'Request checksums: AWS supports trailing CRC32 checksums; many S3-compatible servers only accept them when required. Default: when_required with a custom endpoint, when_supported otherwise',
      }),
    ),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 10,
      default: 3,
      description: 'SDK attempts per request',
    }),
    requestTimeoutMs: Type.Integer({ minimum: 100, default: 120_000 }),
  },
  { additionalProperties: false },
)
export type S3Params = Static<typeof S3ParamsSchema>
/** @deprecated use S3ParamsSchema */
export const S3Params = S3ParamsSchema

export const S3StreamSchema = Type.Object(
  {
    prefix: Type.String({ default: '', description: 'Only keys under this prefix' }),
    glob: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Only keys (relative to the prefix) matching this glob',
      }),
    ),
    suffix: Type.Optional(Type.String({ minLength: 1, description: 'Only keys ending with this' })),
    startAfter: Type.Optional(Type.String({ description: 'Only keys after this one' })),
    range: Type.Optional(ObjectKeyRangeSchema),
    modifiedSince: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'Only objects last modified at or after this instant (watermark)',
      }),
    ),
    pageSize: Type.Integer({ minimum: 1, maximum: 1000, default: 1000 }),
    metadata: Type.Boolean({
      default: true,
      description: 'Fetch content type and user metadata with a HeadObject per object',
    }),
  },
  { additionalProperties: false },
)
export type S3Stream = Static<typeof S3StreamSchema>
/** @deprecated use S3StreamSchema */
export const S3Stream = S3StreamSchema

export const S3ContextSchema = Type.Object(
  { key: Type.String({ description: 'The last key delivered; a resumed read starts after it' }) },
  { additionalProperties: false },
)
export type S3Context = Static<typeof S3ContextSchema>
/** @deprecated use S3ContextSchema */
export const S3Context = S3ContextSchema

export const S3SinkStreamSchema = Type.Object(
  {
    prefix: Type.String({ default: '', description: 'Prepended to every blob key' }),
    createOnly: Type.Boolean({
      default: false,
      description:
        'Never overwrite: an existing key is a data failure for that blob (If-None-Match: *)',
    }),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 4,
      description: 'Objects uploaded at once per batch',
    }),
    partSizeBytes: Type.Integer({ minimum: 5 * 1024 * 1024, default: 8 * 1024 * 1024 }),
    partConcurrency: Type.Integer({
      minimum: 1,
      maximum: 16,
      default: 4,
      description: 'Parts in flight per object',
    }),
    serverSideCopy: Type.Boolean({
      default: true,
      description:
        'Copy inside the store (CopyObject, UploadPartCopy) when the source is an S3 node on the same endpoint and region with the same credentials; false streams every byte through the runtime',
    }),
    copyCutoffBytes: Type.Integer({
      minimum: 5 * 1024 * 1024,
      maximum: 5 * 1024 ** 3,
      default: 5 * 1024 ** 3,
      description:
        'Server-side copies of objects larger than this are multipart (UploadPartCopy in partSizeBytes parts, partConcurrency at a time); smaller ones are one CopyObject',
    }),
  },
  { additionalProperties: false },
)
export type S3SinkStream = Static<typeof S3SinkStreamSchema>
/** @deprecated use S3SinkStreamSchema */
export const S3SinkStream = S3SinkStreamSchema
