import { LocalPath, type Static, Type } from '@nvisy/provider-core'

/** A local directory needs no credentials. */
export const FsCredentialsSchema = Type.Object({}, { additionalProperties: false })
export type FsCredentials = Static<typeof FsCredentialsSchema>

export const FsParamsSchema = Type.Object(
  {
    // A local path: a runtime serving the bus confines it to its --fs-root allowlist.
    root: LocalPath(
      Type.String({
        minLength: 1,
        // A path with a NUL byte is refused by every file system call; refuse it up front.
        pattern: '^[^\\u0000]+$',
        description:
          'The directory that holds the data: absolute, or relative to the process working directory (or the factory baseDir).',
      }),
    ),
    readOnly: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Refuse writes, and do not require a writable root in check().',
      }),
    ),
  },
  { additionalProperties: false },
)
export type FsParams = Static<typeof FsParamsSchema>

const JsonlFile = Type.String({
  minLength: 1,
  pattern: '\\.(jsonl|ndjson)$',
  description: 'A JSON Lines file, relative to root (no "..", not absolute).',
})
const IdField = Type.String({
  minLength: 1,
  default: 'id',
  description: 'The top-level field that holds a document id.',
})

export const FsBlobStreamSchema = Type.Object(
  {
    kind: Type.Literal('blob'),
    prefix: Type.Optional(
      Type.String({
        description: 'Only keys that start with this string (not necessarily a folder).',
      }),
    ),
    glob: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Only keys that match this glob (picomatch, dotfiles included).',
      }),
    ),
    range: Type.Optional(
      Type.Object(
        {
          after: Type.Optional(
            Type.String({ description: 'Only keys that sort (byte-wise) after this one' }),
          ),
          through: Type.Optional(
            Type.String({ description: 'Only keys that sort at or before this one' }),
          ),
        },
        {
          additionalProperties: false,
          description: 'A key range, as `partition` returns it; a missing bound is open',
        },
      ),
    ),
  },
  { additionalProperties: false },
)
export type FsBlobStream = Static<typeof FsBlobStreamSchema>

/** A line of a JSONL file as a resume context names it: its 1-based number and the byte offset just after it. */
const LinePosition = (description: string) =>
  Type.Object(
    { line: Type.Integer({ minimum: 1 }), offset: Type.Integer({ minimum: 1 }) },
    { additionalProperties: false, description },
  )

export const FsDocumentStreamSchema = Type.Object(
  {
    kind: Type.Literal('document'),
    file: JsonlFile,
    idField: Type.Optional(IdField),
    range: Type.Optional(
      Type.Object(
        {
          after: Type.Optional(LinePosition('Only lines after this one (exclusive)')),
          through: Type.Optional(LinePosition('Only lines up to this one (inclusive)')),
        },
        {
          additionalProperties: false,
          description: 'A range of lines, as `partition` returns it; a missing bound is open',
        },
      ),
    ),
  },
  { additionalProperties: false },
)
export type FsDocumentStream = Static<typeof FsDocumentStreamSchema>

/** Source stream settings: files under root as blobs, or one JSONL file as documents. */
export const FsStreamSchema = Type.Union([FsBlobStreamSchema, FsDocumentStreamSchema])
export type FsStream = Static<typeof FsStreamSchema>

export const FsBlobSinkStreamSchema = Type.Object(
  {
    kind: Type.Literal('blob'),
    prefix: Type.Optional(
      Type.String({
        description: 'Prepended to every written key ("out/" writes key "a.txt" to out/a.txt).',
      }),
    ),
  },
  { additionalProperties: false },
)
export type FsBlobSinkStream = Static<typeof FsBlobSinkStreamSchema>

/** Sink stream settings: blobs as files under root, or documents appended to one JSONL file. */
export const FsSinkStreamSchema = Type.Union([FsBlobSinkStreamSchema, FsDocumentStreamSchema])
export type FsSinkStream = Static<typeof FsSinkStreamSchema>

/** Resume after a blob: keys are read in byte-wise order, so the next one is the first key > this one. */
export const FsBlobContextSchema = Type.Object(
  { key: Type.String() },
  { additionalProperties: false },
)
export type FsBlobContext = Static<typeof FsBlobContextSchema>

/** Resume after a JSONL line: `line` is its 1-based number, `offset` the byte offset just after it. */
export const FsDocumentContextSchema = Type.Object(
  { line: Type.Integer({ minimum: 1 }), offset: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
)
export type FsDocumentContext = Static<typeof FsDocumentContextSchema>

export const FsContextSchema = Type.Union([FsBlobContextSchema, FsDocumentContextSchema])
export type FsContext = Static<typeof FsContextSchema>
