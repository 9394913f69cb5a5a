/** The executor's defaults, where a pipeline or node does not set its own. */
export const DEFAULTS = {
  checkpointEveryItems: 10_000,
  checkpointEverySeconds: 5,
  queueCapacity: 4,
  maxAttempts: 5,
  concurrency: 1,
  /** Items buffered between a source and one edge's batcher. */
  itemBuffer: 16,
  /** Streamed blob bodies up to this size are read into memory so a retry or a second sink can send them again. */
  bufferBlobBytes: 8 * 1024 * 1024,
  /** The largest streamed blob read into memory to fan out to several sinks. */
  maxFanOutBlobBytes: 64 * 1024 * 1024,
} as const
