/** The executor's defaults, where a pipeline or node does not set its own. */
export const DEFAULTS = {
  checkpointEveryItems: 10_000,
  checkpointEverySeconds: 5,
  queueCapacity: 4,
  maxAttempts: 5,
  concurrency: 1,
  /** A sink's batch: at most this many items (rows, for pass-through) ... */
  batchMaxItems: 1000,
  /** ... and about this many bytes ... */
  batchMaxBytes: 8 * 1024 * 1024,
  /** ... or what arrived within this many ms. */
  batchMaxAgeMs: 1000,
  /** What a blob copied server-side weighs when queues and batches are bounded by bytes (one request). */
  copyRequestBytes: 1024,
  /** Items buffered between a source and one edge's batcher. */
  itemBuffer: 16,
  /**
   * Rows in a pass-through batch when the sink node sets no `maxItems`: such a batch costs
   * one statement and no work per row, so it is bounded by bytes (`batchMaxBytes`) instead.
   */
  wireMaxRows: 1_000_000,
  /** Pass-through items (each a whole batch of rows) buffered between a source and its edge's batcher. */
  wireItemBuffer: 1,
  /** Pass-through batches queued for a sink's writers, at most (each item is a whole batch). */
  wireQueueCapacity: 2,
  /** Streamed blob bodies up to this size are read into memory so a retry or a second sink can send them again. */
  bufferBlobBytes: 8 * 1024 * 1024,
  /** The largest streamed blob read into memory to fan out to several sinks. */
  maxFanOutBlobBytes: 64 * 1024 * 1024,
} as const
