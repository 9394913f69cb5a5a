import type { Static, TSchema } from '@sinclair/typebox'
import { abortReason, raceAbort } from './abort.js'
import type { PrepareResult, StreamSchema } from './columns.js'
import { DATA_KINDS, type Data, type DataKind } from './data.js'
import {
  isAbortError,
  type Operation,
  ProviderError,
  toProviderError,
  type ValidationIssue,
} from './errors.js'
import { type Logger, redactingLogger, silentLogger } from './logger.js'
import { Redactor } from './redact.js'
import { formatIssues, validateValue } from './schema.js'

/** The version of the contract this package defines. A provider declares the one it implements. */
export const SPECIFICATION_VERSION = 'v1'
export type SpecificationVersion = typeof SPECIFICATION_VERSION

export interface ConnectContext {
  signal: AbortSignal
  logger: Logger
}

/** A stream a connection can read or write: a table, a bucket prefix, a collection, a subject. */
export interface StreamInfo {
  /** Human-readable name, unique within the connection. */
  name: string
  /** What it is in the system's own terms: table, view, bucket, prefix, collection, stream... */
  type: string
  /** The data kind reading it yields. */
  data: DataKind
  /** Stream settings that select it, valid against the provider's stream schema. */
  stream: Record<string, unknown>
  /** Columns or fields when the system has a schema. */
  fields?: { name: string; type: string; nullable?: boolean; primaryKey?: boolean }[]
  description?: string
}

export interface PrepareOptions {
  signal: AbortSignal
  /**
   * The schema of what will be written (the source stream's `describeStream`, after any
   * conversion), used to create or evolve the destination. Absent when the source cannot say.
   */
  schema?: StreamSchema | undefined
  /** Report what would be done (and refuse what cannot be) without changing anything. */
  dryRun?: boolean | undefined
}

export interface ReadItem<TContext = unknown> {
  data: Data
  /** Resume after this item with `read(stream, { after: context })`. A small JSON value. */
  context: TContext
}

export interface ReadOptions<TContext = unknown> {
  /** Yield only the items after the one this context came from. */
  after?: TContext | undefined
  signal: AbortSignal
}

/** The largest partition count a caller may ask for. */
export const MAX_PARTITIONS = 1024

export interface PartitionOptions {
  /** How many partitions the caller would like (1 to `MAX_PARTITIONS`); a source returns at most this many. */
  count: number
  signal: AbortSignal
}

/**
 * A stream split into partitions: stream settings of the same provider, each readable and
 * resumable on its own (`read(partition, { after: item.context })`). The partitions are
 * disjoint and together read exactly what the stream reads, items added while they are read
 * included: each new item belongs to exactly one partition (a source that splits by key
 * leaves its last partition open-ended).
 */
export interface PartitionPlan<TStream = unknown> {
  /** The partitions' stream settings, in the source's order: at least one, at most `count`. */
  partitions: TStream[]
  /**
   * Why there are fewer partitions than were asked for: the source cannot split this stream,
   * it is empty, it holds fewer items than partitions...
   */
  reason?: string | undefined
}

export interface WriteOptions {
  signal: AbortSignal
  /**
   * Exactly-once appends: commit `context` under `key` in the destination in the same
   * transaction as this batch (only given to sinks that declare `offsets`, and only when
   * the batch holds source items in order). `readOffset(stream, key)` returns it later.
   */
  offset?: { key: string; context: unknown } | undefined
  /**
   * Server-side copies (blob sinks of providers that define `serverSideCopy`): copy each blob
   * that carries an `origin` inside the store instead of streaming its body, and stream the
   * body of any blob the store will not copy. Set by the runtime only on a blob -> blob edge
   * for which `canCopyServerSide` said yes (same provider, deep-equal credentials, one place).
   * A sink never acts on `origin` without it.
   */
  serverSideCopy?: boolean | undefined
}

export interface WriteFailure {
  /** The index of the failed item in the batch. */
  index: number
  error: ProviderError
}

export interface WriteResult {
  /** Items written (created, replaced, or already present with the same key). */
  written: number
  /** Items that failed alone; the rest of the batch was written. */
  failed: WriteFailure[]
}

export interface Connection<TStream = any, TContext = any, TSinkStream = any> {
  /** A cheap round trip that proves the connection works, and classifies why it does not. */
  check(): Promise<void>
  discover?(options: { signal: AbortSignal }): Promise<StreamInfo[]>
  read?(stream: TStream, options: ReadOptions<TContext>): AsyncIterable<ReadItem<TContext>>
  write?(stream: TSinkStream, batch: readonly Data[], options: WriteOptions): Promise<WriteResult>
  /**
   * Source with `partition`: split a stream into at most `options.count` disjoint partitions
   * whose union is exactly the stream (see `PartitionPlan`). A stream that cannot be split
   * returns one partition (the stream) with a `reason`.
   */
  partition?(stream: TStream, options: PartitionOptions): Promise<PartitionPlan<TStream>>
  /** Delete items by id or key, for sinks that mirror a source. */
  delete?(stream: TSinkStream, ids: readonly string[], options: WriteOptions): Promise<WriteResult>
  /** Source: the columns and key of one stream, in portable types, so a sink can create its destination. */
  describeStream?(stream: TStream, options: { signal: AbortSignal }): Promise<StreamSchema>
  /**
   * Sink: make sure the destination exists and fits before the first write: create or evolve
   * it as the sink stream's settings allow, or fail with a `config` (or `not_found`) error
   * that names what is missing. With `dryRun` nothing changes.
   */
  prepare?(stream: TSinkStream, options: PrepareOptions): Promise<PrepareResult>
  /** Sink with `offsets`: the context last committed under `key` by a write's `offset`, if any. */
  readOffset?(stream: TSinkStream, key: string, options: { signal: AbortSignal }): Promise<unknown>
  close(): Promise<void>
}

export interface SourceDefinition<TStream extends TSchema, TContext extends TSchema> {
  /** The data kinds this source yields. */
  data: DataKind | readonly DataKind[]
  /** Stream settings: which table, prefix, collection... */
  stream: TStream
  /** The resume context every item carries. */
  context: TContext
  /** True when `after` on a finished read yields only what arrived since: incremental runs. */
  incremental?: boolean
  /** The ordering key reads follow, for docs and the catalog: "primary key", "object key"... */
  ordering: string
  /** Whether `describeStream` is implemented. */
  describe?: boolean
  /**
   * Whether `partition` is implemented: the source splits a stream into disjoint partitions
   * (key ranges) that can be read at once, each with its own resume context.
   */
  partition?: boolean
  /** The data kind a given stream yields, when the source has more than one. */
  dataKindOf?(stream: Static<TStream>): DataKind
  /**
   * Whether reads of this stream are incremental, when that depends on the stream (a Redis
   * stream is, a SCAN over keys is not). Defaults to `incremental`.
   */
  incrementalFor?(stream: Static<TStream>): boolean
}

export interface SinkDefinition<TSinkStream extends TSchema> {
  data: DataKind | readonly DataKind[]
  stream: TSinkStream
  /** What writes are idempotent by: "primary key", "object key"... */
  idempotentBy: string
  /** Whether `delete` is supported. */
  deletes?: boolean
  /** Whether `prepare` creates or checks the destination. */
  prepare?: boolean
  /** Whether writes commit `WriteOptions.offset` with the batch and `readOffset` returns it (exactly-once appends). */
  offsets?: boolean
  dataKindOf?(stream: Static<TSinkStream>): DataKind
}

export interface ProviderDefinition<
  TCredentials extends TSchema,
  TParams extends TSchema,
  TStream extends TSchema,
  TContext extends TSchema,
  TSinkStream extends TSchema,
> {
  /** Unique provider id, lower-case: `postgres`, `s3`, `acme-crm`. */
  id: string
  /** The package version (export VERSION from the package). */
  version: string
  specificationVersion: SpecificationVersion
  displayName?: string
  description?: string
  /** Credential schema; mark secret fields with `Secret(...)`. */
  credentials: TCredentials
  /** Connection parameters (host, bucket, region...). */
  params: TParams
  source?: SourceDefinition<TStream, TContext>
  sink?: SinkDefinition<TSinkStream>
  /** Whether `discover` is implemented. */
  discover?: boolean
  /** Turn a raw driver error into a classified ProviderError (auth, transient...). */
  classifyError?: (error: unknown) => ProviderError | undefined
  /**
   * Server-side copies between two connections of this provider. The runtime asks only for
   * a blob -> blob edge whose source and sink both use this provider with deep-equal
   * credentials (it compares them; see `canCopyServerSide`). Return true when the two params
   * name one place where those credentials may read the source's objects and write the
   * sink's (the same endpoint and region; buckets may differ) and the streams allow it; the
   * runtime then sets `WriteOptions.serverSideCopy` on the sink's writes, the source sets
   * `BlobData.origin`, and the sink copies by origin. Leave it out to always stream.
   */
  serverSideCopy?(
    source: { params: Static<TParams>; stream: Static<TStream> },
    sink: { params: Static<TParams>; stream: Static<TSinkStream> },
  ): boolean
  connect(
    input: { credentials: Static<TCredentials>; params: Static<TParams> },
    context: ConnectContext,
  ): Promise<Connection<Static<TStream>, Static<TContext>, Static<TSinkStream>>>
}

export interface Capabilities {
  read: boolean
  write: boolean
  discover: boolean
  incremental: boolean
  delete: boolean
  /** The source describes a stream's columns (`describeStream`). */
  describeStream: boolean
  /** The sink creates or checks its destination (`prepare`). */
  prepare: boolean
  /** The sink commits resume offsets with its writes (exactly-once appends). */
  offsets: boolean
  /** The source splits a stream into disjoint partitions (`partition`). */
  partition: boolean
  sourceData: DataKind[]
  sinkData: DataKind[]
}

export interface ConnectInput {
  credentials: unknown
  params: unknown
}

/** A provider as the runtime sees it: validated, guarded, described. */
export interface Provider<
  TCredentials extends TSchema = TSchema,
  TParams extends TSchema = TSchema,
  TStream extends TSchema = TSchema,
  TContext extends TSchema = TSchema,
  TSinkStream extends TSchema = TSchema,
> {
  readonly id: string
  readonly version: string
  readonly specificationVersion: SpecificationVersion
  readonly capabilities: Capabilities
  readonly definition: ProviderDefinition<TCredentials, TParams, TStream, TContext, TSinkStream>
  /** Validate input, connect, and return a guarded connection. */
  connect(
    input: ConnectInput,
    context?: Partial<ConnectContext>,
  ): Promise<GuardedConnection<Static<TStream>, Static<TContext>, Static<TSinkStream>>>
  /** Validate credentials and params; throws a `config` error naming each failing field. */
  validateInput(input: ConnectInput): { credentials: Static<TCredentials>; params: Static<TParams> }
  validateStream(stream: unknown): Static<TStream>
  validateSinkStream(stream: unknown): Static<TSinkStream>
  validateContext(context: unknown): Static<TContext>
  /** The data kind a source stream yields. */
  sourceDataKind(stream: Static<TStream>): DataKind
  /** Whether reads of this (validated) stream are incremental. */
  isIncremental(stream: Static<TStream>): boolean
  sinkDataKind(stream: Static<TSinkStream>): DataKind
  /** A redactor for every secret value in these credentials and params. */
  redactor(input: ConnectInput): Redactor
  /** JSON description for the catalog: ids, capabilities, JSON Schemas. */
  describe(): ProviderDescription
}

export interface ProviderDescription {
  id: string
  version: string
  specificationVersion: SpecificationVersion
  displayName?: string
  description?: string
  capabilities: Capabilities
  ordering?: string
  idempotentBy?: string
  schemas: {
    credentials: TSchema
    params: TSchema
    sourceStream?: TSchema
    context?: TSchema
    sinkStream?: TSchema
  }
}

/** A connection with the runtime's guarantees: validated settings, classified and redacted errors, one close. */
export interface GuardedConnection<TStream = any, TContext = any, TSinkStream = any> {
  readonly providerId: string
  check(options?: { signal?: AbortSignal }): Promise<void>
  discover(options?: { signal?: AbortSignal }): Promise<StreamInfo[]>
  read(stream: TStream, options: ReadOptions<TContext>): AsyncIterable<ReadItem<TContext>>
  /**
   * Split a source stream into at most `count` partitions (`PartitionPlan`). `count` is
   * checked (an integer from 1 to `MAX_PARTITIONS`, else a `config` error naming it), the
   * stream is validated, and so is every partition the provider returns. A provider without
   * the `partition` capability (or asked for one partition) returns the stream itself as the
   * one partition, with a reason when it cannot split.
   */
  partition(
    stream: TStream,
    options: { count: number; signal?: AbortSignal | undefined },
  ): Promise<PartitionPlan<TStream>>
  write(stream: TSinkStream, batch: readonly Data[], options: WriteOptions): Promise<WriteResult>
  delete(stream: TSinkStream, ids: readonly string[], options: WriteOptions): Promise<WriteResult>
  /** The source stream's schema; a `config` error when the provider cannot describe streams. */
  describeStream(stream: TStream, options?: { signal?: AbortSignal }): Promise<StreamSchema>
  /** Create, evolve or check the sink's destination; providers without `prepare` report `{ existed: true, actions: [] }`. */
  prepare(stream: TSinkStream, options?: Partial<PrepareOptions>): Promise<PrepareResult>
  /** The offset committed under `key`, or undefined (also for sinks without offsets). */
  readOffset(stream: TSinkStream, key: string, options?: { signal?: AbortSignal }): Promise<unknown>
  close(): Promise<void>
  readonly closed: boolean
}

function kindsOf(data: DataKind | readonly DataKind[] | undefined): DataKind[] {
  if (data === undefined) return []
  return typeof data === 'string' ? [data] : [...data]
}

const ID_PATTERN = /^[a-z][a-z0-9-]{0,63}$/

/**
 * Define a provider. Returns the provider the runtime loads: input validated against the
 * schemas (compiled once), errors classified, given provider/operation/stream/cursor context
 * and redacted of every secret, data kinds checked, and the connection closed once.
 */
export function defineProvider<
  TCredentials extends TSchema,
  TParams extends TSchema,
  TStream extends TSchema = TSchema,
  TContext extends TSchema = TSchema,
  TSinkStream extends TSchema = TSchema,
>(
  definition: ProviderDefinition<TCredentials, TParams, TStream, TContext, TSinkStream>,
): Provider<TCredentials, TParams, TStream, TContext, TSinkStream> {
  if (!ID_PATTERN.test(definition.id)) {
    throw new ProviderError({
      kind: 'config',
      message: `provider id ${JSON.stringify(definition.id)} must match ${ID_PATTERN} (lower-case letters, digits, dashes)`,
    })
  }
  if (definition.specificationVersion !== SPECIFICATION_VERSION) {
    throw new ProviderError({
      kind: 'config',
      providerId: definition.id,
      message: `provider ${definition.id} implements specification ${String(definition.specificationVersion)}, this core implements ${SPECIFICATION_VERSION}`,
    })
  }
  const id = definition.id
  const sourceData = kindsOf(definition.source?.data)
  const sinkData = kindsOf(definition.sink?.data)
  for (const [side, kinds, declared] of [
    ['source', sourceData, definition.source],
    ['sink', sinkData, definition.sink],
  ] as const) {
    if (declared === undefined) continue
    const unknown = kinds.filter((kind) => !DATA_KINDS.includes(kind))
    if (kinds.length === 0 || unknown.length > 0) {
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        message: `provider ${id} ${side} data must be one or more of ${DATA_KINDS.join(', ')}; got ${JSON.stringify(kinds)}`,
      })
    }
  }
  const capabilities: Capabilities = Object.freeze({
    read: definition.source !== undefined,
    write: definition.sink !== undefined,
    discover: definition.discover === true,
    incremental: definition.source?.incremental === true,
    delete: definition.sink?.deletes === true,
    describeStream: definition.source?.describe === true,
    prepare: definition.sink?.prepare === true,
    offsets: definition.sink?.offsets === true,
    partition: definition.source?.partition === true,
    sourceData,
    sinkData,
  }) as Capabilities

  const validateInput = (input: ConnectInput) => {
    // Both are validated before failing, so one error lists every failing field.
    const failures: { what: string; issues: ValidationIssue[] }[] = []
    const attempt = <T>(what: string, validate: () => T): T | undefined => {
      try {
        return validate()
      } catch (error) {
        if (!ProviderError.isInstance(error) || !error.issues) throw error
        failures.push({ what, issues: error.issues })
        return undefined
      }
    }
    const credentials = attempt('credentials', () =>
      validateValue(definition.credentials, input?.credentials ?? {}, {
        what: `${id} credentials`,
        pathPrefix: '/credentials',
        providerId: id,
        operation: 'connect',
      }),
    )
    const params = attempt('params', () =>
      validateValue(definition.params, input?.params ?? {}, {
        what: `${id} params`,
        pathPrefix: '/params',
        providerId: id,
        operation: 'connect',
      }),
    )
    if (failures.length > 0) {
      const issues = failures.flatMap((f) => f.issues)
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        operation: 'connect',
        message: `invalid ${id} ${failures.map((f) => f.what).join(' and ')}: ${formatIssues(issues)}`,
        issues,
      })
    }
    return { credentials: credentials as Static<TCredentials>, params: params as Static<TParams> }
  }

  const requireSource = (operation: string) => {
    if (!definition.source) {
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        operation,
        message: `provider ${id} cannot read: it declares no source`,
      })
    }
    return definition.source
  }
  const requireSink = (operation: string) => {
    if (!definition.sink) {
      throw new ProviderError({
        kind: 'config',
        providerId: id,
        operation,
        message: `provider ${id} cannot write: it declares no sink`,
      })
    }
    return definition.sink
  }

  const validateStream = (stream: unknown) =>
    validateValue(requireSource('read').stream, stream, {
      what: `${id} stream settings`,
      pathPrefix: '/stream',
      providerId: id,
      operation: 'read',
    })
  const validateSinkStream = (stream: unknown) =>
    validateValue(requireSink('write').stream, stream, {
      what: `${id} sink stream settings`,
      pathPrefix: '/stream',
      providerId: id,
      operation: 'write',
    })
  const validateContext = (context: unknown) =>
    validateValue(requireSource('read').context, context, {
      what: `${id} resume context`,
      pathPrefix: '/after',
      providerId: id,
      operation: 'read',
    })

  const sourceDataKind = (stream: Static<TStream>): DataKind => {
    const source = requireSource('read')
    if (source.dataKindOf) return source.dataKindOf(stream)
    return sourceData[0]!
  }
  const isIncremental = (stream: Static<TStream>): boolean => {
    const source = requireSource('read')
    if (source.incrementalFor) return source.incrementalFor(stream)
    return source.incremental === true
  }
  const sinkDataKind = (stream: Static<TSinkStream>): DataKind => {
    const sink = requireSink('write')
    if (sink.dataKindOf) return sink.dataKindOf(stream)
    return sinkData[0]!
  }

  const redactor = (input: ConnectInput) =>
    Redactor.merge(
      Redactor.fromSchema(definition.credentials, input?.credentials),
      Redactor.fromSchema(definition.params, input?.params),
    )

  const provider: Provider<TCredentials, TParams, TStream, TContext, TSinkStream> = {
    id,
    version: definition.version,
    specificationVersion: SPECIFICATION_VERSION,
    capabilities,
    definition,
    validateInput,
    validateStream,
    validateSinkStream,
    validateContext,
    sourceDataKind,
    sinkDataKind,
    isIncremental,
    redactor,
    describe() {
      const description: ProviderDescription = {
        id,
        version: definition.version,
        specificationVersion: SPECIFICATION_VERSION,
        capabilities,
        schemas: { credentials: definition.credentials, params: definition.params },
      }
      if (definition.displayName) description.displayName = definition.displayName
      if (definition.description) description.description = definition.description
      if (definition.source) {
        description.schemas.sourceStream = definition.source.stream
        description.schemas.context = definition.source.context
        description.ordering = definition.source.ordering
      }
      if (definition.sink) {
        description.schemas.sinkStream = definition.sink.stream
        description.idempotentBy = definition.sink.idempotentBy
      }
      return description
    },
    async connect(input, context = {}) {
      const redact = redactor(input)
      const logger = redactingLogger(context.logger ?? silentLogger, redact)
      const signal = context.signal ?? new AbortController().signal
      const fail = (
        error: unknown,
        where: { operation: Operation; stream?: string | undefined; cursor?: unknown },
      ) =>
        redact.error(
          toProviderError(error, { providerId: id, ...where, classify: definition.classifyError }),
        )
      const validated = (() => {
        try {
          return validateInput(input)
        } catch (error) {
          throw fail(error, { operation: 'connect' })
        }
      })()
      let connection: Connection<Static<TStream>, Static<TContext>, Static<TSinkStream>>
      try {
        connection = await definition.connect(validated, { signal, logger })
      } catch (error) {
        throw keepAbort(error, redact) ?? fail(error, { operation: 'connect' })
      }
      return guardConnection(provider, connection, fail, redact)
    },
  }
  return provider
}

/** An abort stays an abort (redacted), so callers can tell cancellation from failure. */
function keepAbort(error: unknown, redact: Redactor): Error | undefined {
  return isAbortError(error) && error instanceof Error ? redact.error(error) : undefined
}

function streamLabel(stream: unknown): string | undefined {
  if (stream === null || typeof stream !== 'object') return undefined
  const s = stream as Record<string, unknown>
  for (const key of [
    'name',
    'table',
    'collection',
    'prefix',
    'stream',
    'subject',
    'key',
    'path',
    'index',
    'label',
  ]) {
    const value = s[key]
    if (typeof value === 'string') return value
  }
  try {
    return JSON.stringify(stream)
  } catch {
    return undefined
  }
}

function guardConnection<
  TStream extends TSchema,
  TContext extends TSchema,
  TSinkStream extends TSchema,
>(
  provider: Provider<any, any, TStream, TContext, TSinkStream>,
  connection: Connection<Static<TStream>, Static<TContext>, Static<TSinkStream>>,
  fail: (
    error: unknown,
    where: { operation: Operation; stream?: string | undefined; cursor?: unknown },
  ) => ProviderError,
  redact: Redactor = new Redactor([]),
): GuardedConnection<Static<TStream>, Static<TContext>, Static<TSinkStream>> {
  const id = provider.id
  let closing: Promise<void> | undefined
  const ensureOpen = (operation: Operation) => {
    if (closing)
      throw new ProviderError({
        kind: 'internal',
        providerId: id,
        operation,
        message: `${id} connection is closed`,
      })
  }
  const run = async <T>(
    operation: Operation,
    fn: () => Promise<T>,
    stream?: unknown,
  ): Promise<T> => {
    ensureOpen(operation)
    try {
      return await fn()
    } catch (error) {
      throw keepAbort(error, redact) ?? fail(error, { operation, stream: streamLabel(stream) })
    }
  }
  const checkBatchKinds = (stream: Static<TSinkStream>, batch: readonly Data[]) => {
    const expected = provider.sinkDataKind(stream)
    const failed: WriteFailure[] = []
    const accepted: { item: Data; index: number }[] = []
    batch.forEach((item, index) => {
      if (item?.kind === expected) accepted.push({ item, index })
      else
        failed.push({
          index,
          error: new ProviderError({
            kind: 'data',
            providerId: id,
            operation: 'write',
            stream: streamLabel(stream),
            message: `item ${index} is ${item?.kind === undefined ? 'not a data item' : `a ${item.kind}`}; this sink takes ${expected}`,
          }),
        })
    })
    return { failed, accepted }
  }
  const writeLike = async (
    operation: 'write' | 'delete',
    stream: unknown,
    call: (stream: Static<TSinkStream>) => Promise<WriteResult>,
  ) => {
    ensureOpen(operation)
    let settings: Static<TSinkStream>
    try {
      settings = provider.validateSinkStream(stream)
    } catch (error) {
      throw fail(error, { operation, stream: streamLabel(stream) })
    }
    try {
      const result = await call(settings)
      return {
        written: result.written,
        failed: result.failed.map((f) => ({
          index: f.index,
          error: fail(f.error, { operation, stream: streamLabel(stream) }),
        })),
      }
    } catch (error) {
      throw keepAbort(error, redact) ?? fail(error, { operation, stream: streamLabel(stream) })
    }
  }

  return {
    providerId: id,
    get closed() {
      return closing !== undefined
    },
    check: (options = {}) =>
      run('check', () =>
        // A check that hangs (a server that accepts but never answers) ends on abort.
        options.signal ? raceAbort(connection.check(), options.signal) : connection.check(),
      ),
    discover: (options = {}) =>
      run('discover', async () => {
        if (!connection.discover) {
          throw new ProviderError({
            kind: 'config',
            message: `provider ${id} does not support discover`,
          })
        }
        return connection.discover({ signal: options.signal ?? new AbortController().signal })
      }),
    read(stream, options) {
      const signal = options.signal
      return {
        [Symbol.asyncIterator]: () => {
          let cursor: unknown = options.after
          let inner: AsyncIterator<ReadItem<Static<TContext>>> | undefined
          let expected: DataKind | undefined
          const label = streamLabel(stream)
          // What a source yields is checked as cheaply as a write's items: the declared kind
          // and a context to resume from, so a provider bug never reaches a sink.
          const badItem = (
            value: ReadItem<Static<TContext>> | undefined,
          ): ProviderError | undefined => {
            const kind = (value?.data as Data | undefined)?.kind
            if (kind !== expected)
              return new ProviderError({
                kind: 'internal',
                providerId: id,
                operation: 'read',
                stream: label,
                cursor,
                message: `${id} yielded ${kind === undefined ? 'an item without data' : `a ${kind} item`} from a stream of ${expected} items`,
              })
            if (value!.context === undefined)
              return new ProviderError({
                kind: 'internal',
                providerId: id,
                operation: 'read',
                stream: label,
                cursor,
                message: `${id} yielded a ${kind} item without a context: a read could not resume after it`,
              })
            return undefined
          }
          const start = () => {
            ensureOpen('read')
            if (!connection.read) {
              throw new ProviderError({ kind: 'config', message: `provider ${id} cannot read` })
            }
            const settings = provider.validateStream(stream)
            expected = provider.sourceDataKind(settings)
            const after =
              options.after === undefined ? undefined : provider.validateContext(options.after)
            return connection.read(settings, { after, signal })[Symbol.asyncIterator]()
          }
          const stopInner = async () => {
            try {
              await inner?.return?.()
            } catch {}
          }
          const onError = async (error: unknown): Promise<never> => {
            // An aborted read ends with the abort, whatever the provider turned it into.
            if (signal.aborted) throw abortReason(signal)
            throw fail(error, { operation: 'read', stream: label, cursor })
          }
          const onResult = async (
            result: IteratorResult<ReadItem<Static<TContext>>>,
          ): Promise<IteratorResult<ReadItem<Static<TContext>>>> => {
            if (signal.aborted) {
              await stopInner()
              throw abortReason(signal)
            }
            if (!result.done) {
              const bad = badItem(result.value)
              if (bad) {
                // The consumer gets an error, not an item: it will not call return().
                await stopInner()
                throw bad
              }
              cursor = result.value.context
            }
            return result
          }
          const slowNext = async (): Promise<IteratorResult<ReadItem<Static<TContext>>>> => {
            try {
              if (signal.aborted) {
                // A for-await loop does not call return() after next() throws: stop the source here.
                await stopInner()
                throw abortReason(signal)
              }
              if (inner && closing) {
                await stopInner()
                ensureOpen('read')
              }
              inner ??= start()
              return await onResult(await inner.next())
            } catch (error) {
              return onError(error)
            }
          }
          return {
            next() {
              // The per-item path: one promise reaction, no extra async frame. Start, abort
              // and close take the slow path above.
              if (inner === undefined || closing || signal.aborted) return slowNext()
              let pending: Promise<IteratorResult<ReadItem<Static<TContext>>>>
              try {
                pending = inner.next()
              } catch (error) {
                return onError(error)
              }
              return pending.then((result) => {
                if (signal.aborted || result.done) return onResult(result)
                if (result.value?.data?.kind !== expected || result.value.context === undefined)
                  return onResult(result)
                cursor = result.value.context
                return result
              }, onError)
            },
            async return() {
              try {
                await inner?.return?.()
              } catch (error) {
                throw fail(error, { operation: 'read', stream: label, cursor })
              }
              return { done: true, value: undefined }
            },
          }
        },
      }
    },
    partition: (stream, options) =>
      run(
        'partition',
        async () => {
          const count = options?.count
          if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
            const message = `partition count must be an integer from 1 to ${MAX_PARTITIONS}, got ${JSON.stringify(count)}`
            throw new ProviderError({
              kind: 'config',
              message,
              issues: [{ path: '/count', rule: `integer 1..${MAX_PARTITIONS}`, message }],
            })
          }
          const settings = provider.validateStream(stream)
          if (count === 1) return { partitions: [settings] }
          if (!provider.capabilities.partition || !connection.partition)
            return {
              partitions: [settings],
              reason: `provider ${id} cannot split a stream into partitions: it is read as one`,
            }
          const plan = await connection.partition(settings, {
            count,
            signal: options.signal ?? new AbortController().signal,
          })
          const partitions = (plan as PartitionPlan | undefined)?.partitions
          if (!Array.isArray(partitions) || partitions.length < 1 || partitions.length > count)
            throw new ProviderError({
              kind: 'internal',
              message: `${id} partition returned ${Array.isArray(partitions) ? `${partitions.length} partitions` : 'no partition list'}; asked for at most ${count} (at least one)`,
            })
          const checked = partitions.map((partition, index) => {
            try {
              return provider.validateStream(partition)
            } catch (error) {
              throw new ProviderError({
                kind: 'internal',
                message: `${id} partition ${index} of ${partitions.length} is not valid stream settings: ${(error as Error).message}`,
                cause: error,
              })
            }
          })
          return plan.reason === undefined
            ? { partitions: checked }
            : { partitions: checked, reason: String(plan.reason) }
        },
        stream,
      ),
    write: (stream, batch, options) =>
      writeLike('write', stream, async (settings) => {
        if (!connection.write)
          throw new ProviderError({ kind: 'config', message: `provider ${id} cannot write` })
        const { failed, accepted } = checkBatchKinds(settings, batch)
        if (accepted.length === 0) return { written: 0, failed }
        if (failed.length === 0) return connection.write(settings, batch, options)
        const result = await connection.write(
          settings,
          accepted.map((a) => a.item),
          options,
        )
        return {
          written: result.written,
          failed: [
            ...failed,
            ...result.failed.map((f) => {
              const original = accepted[f.index]
              if (!original) {
                throw new ProviderError({
                  kind: 'internal',
                  message: `connection reported a failure at index ${f.index} of a batch of ${accepted.length}`,
                })
              }
              return { ...f, index: original.index }
            }),
          ].sort((a, b) => a.index - b.index),
        }
      }),
    delete: (stream, ids, options) =>
      writeLike('delete', stream, async (settings) => {
        if (!connection.delete)
          throw new ProviderError({
            kind: 'config',
            message: `provider ${id} does not support delete`,
          })
        return connection.delete(settings, ids, options)
      }),
    describeStream: (stream, options = {}) =>
      run(
        'describe',
        async () => {
          if (!connection.describeStream)
            throw new ProviderError({
              kind: 'config',
              message: `provider ${id} cannot describe a stream's columns`,
            })
          return connection.describeStream(provider.validateStream(stream), {
            signal: options.signal ?? new AbortController().signal,
          })
        },
        stream,
      ),
    prepare: (stream, options = {}) =>
      run(
        'prepare',
        async () => {
          const settings = provider.validateSinkStream(stream)
          if (!connection.prepare) return { existed: true, actions: [] }
          return connection.prepare(settings, {
            signal: options.signal ?? new AbortController().signal,
            schema: options.schema,
            dryRun: options.dryRun,
          })
        },
        stream,
      ),
    readOffset: (stream, key, options = {}) =>
      run(
        'read',
        async () => {
          const settings = provider.validateSinkStream(stream)
          if (!connection.readOffset) return undefined
          return connection.readOffset(settings, key, {
            signal: options.signal ?? new AbortController().signal,
          })
        },
        stream,
      ),
    close() {
      // An async wrapper, so a close that throws synchronously still rejects the promise.
      closing ??= (async () => connection.close())().catch((error) => {
        throw fail(error, { operation: 'close' })
      })
      return closing
    },
  }
}
