import type { Static, TSchema } from '@sinclair/typebox'
import type { PrepareResult, StreamSchema } from './columns.js'
import type { Data, DataKind } from './data.js'
import type { ProviderError } from './errors.js'
import type { Logger } from './logger.js'
import type { Redactor } from './redact.js'

/*
 * The connect/read/write contract between a provider and the runtime: what a provider
 * declares (`ProviderDefinition`), what its connection implements (`Connection`), and what
 * the runtime gets back (`Provider`, `GuardedConnection`). Types and constants only:
 * `defineProvider` (define-provider.ts) builds a `Provider`, and the guard
 * (connection-guard.ts) turns a `Connection` into a `GuardedConnection`.
 */

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
  /**
   * Pass-through: yield the rows as `RecordData.wire` items in this format, each of at most
   * `maxRows` rows and about `maxBytes` bytes (a single larger row stands alone), cut early
   * when its first row is older than `maxAgeMs` and more text arrives, each with
   * the context of its last row. Given only to sources that list the format in `source.wire`,
   * and only after `wireOffer` offered it for this stream.
   */
  wire?: WireReadOptions | undefined
}

export interface WireReadOptions {
  format: string
  maxRows: number
  maxBytes: number
  /** An item holding rows older than this is cut when the next text arrives (no timer). */
  maxAgeMs?: number | undefined
}

/** What a source can send as wire text for one stream: the format, the columns in field order, and their types. */
export interface WireOffer {
  format: string
  columns: readonly string[]
  /** The columns' types (`describeStream`): a sink accepts only when its columns are the same. */
  schema: StreamSchema
}

/** A sink's answer to a `WireOffer`: take the rows as they are, or why not. */
export type WireAnswer = { accepted: true } | { accepted: false; reason: string }

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
  /**
   * Pass-through: the batch holds `RecordData.wire` items in this format (set by the runtime
   * only on an edge this sink accepted with `acceptWire`). A sink never gets wire items
   * without it.
   */
  wire?: string | undefined
}

export interface WriteFailure {
  /** The index of the failed item in the batch. */
  index: number
  error: ProviderError
  /**
   * The refused row on its own, when the item held several (`RecordData.wire`): the runtime
   * reports and dead-letters it instead of the whole item, whose other rows were written.
   */
  data?: Data | undefined
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
  /**
   * Source with `wire`: what this stream can be read as in `format` (one the source lists:
   * the columns of every row, their types), or why it cannot (`{ reason }`).
   */
  wireOffer?(
    stream: TStream,
    format: string,
    options: { signal: AbortSignal },
  ): Promise<WireOffer | { reason: string }>
  /**
   * Sink with `wire`: whether the destination takes the offered rows as they are (the same
   * columns with the same types, a write mode that can), after `prepare`.
   */
  acceptWire?(
    stream: TSinkStream,
    offer: WireOffer,
    options: { signal: AbortSignal },
  ): Promise<WireAnswer>
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
  /**
   * Pass-through formats the source can read record streams as (`wireOffer`,
   * `ReadOptions.wire`): `postgresql-copy-text`.
   */
  wire?: readonly string[]
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
  /** Pass-through formats the sink can write as they are (`acceptWire`, `WriteOptions.wire`). */
  wire?: readonly string[]
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
  /** A source's wire offer for `format`, or why there is none (a provider without it says so). */
  wireOffer(
    stream: TStream,
    format: string,
    options?: { signal?: AbortSignal },
  ): Promise<WireOffer | { reason: string }>
  /** A sink's answer to a wire offer (a provider without `wire` refuses, saying so). */
  acceptWire(
    stream: TSinkStream,
    offer: WireOffer,
    options?: { signal?: AbortSignal },
  ): Promise<WireAnswer>
  close(): Promise<void>
  readonly closed: boolean
}
