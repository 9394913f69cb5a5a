import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import {
  type Logger,
  type PartitionPlan,
  partitionPlan,
  quantileBounds,
  splitAtBounds,
  throwIfAborted,
} from '@nvisy/provider-core'
import type { FsBlobStream, FsDocumentStream } from './fs-schemas.js'
import { type FsDocumentRange, readBlobs } from './fs-source.js'

/** The most keys held while planning: beyond it every other one is dropped (they arrive sorted). */
export const MAX_KEYS = 100_000

/**
 * Split a blob stream into at most `count` key ranges holding about as many files: the keys
 * of the listing (walked in the read's byte-wise order; bodies are never opened), at most
 * `MAX_KEYS` of them kept evenly spread, cut at their quantiles. The first range keeps the
 * stream's lower bound and the last its upper one (none: open-ended), so a file added while
 * the partitions are read belongs to exactly one of them.
 */
export async function partitionBlobs(
  realRoot: string,
  stream: FsBlobStream,
  count: number,
  signal: AbortSignal,
  logger: Logger,
  maxKeys = MAX_KEYS,
): Promise<PartitionPlan<FsBlobStream>> {
  let keys: string[] = []
  let files = 0
  let stride = 1
  for await (const item of readBlobs(realRoot, stream, undefined, signal, logger)) {
    if (files++ % stride !== 0) continue
    keys.push(item.context.key)
    if (keys.length >= maxKeys) {
      keys = keys.filter((_, i) => i % 2 === 0)
      stride *= 2
    }
  }
  if (keys.length === 0)
    return {
      partitions: [stream],
      reason: 'no file matches the stream: it is read as one partition',
    }
  return partitionPlan(
    splitAtBounds(stream, quantileBounds(keys, count)),
    count,
    `${files} file${files === 1 ? '' : 's'}`,
  )
}

/**
 * Split a JSON Lines stream into at most `count` ranges of lines holding about as many bytes:
 * the file is scanned once for line ends (the line numbers must be exact: every context names
 * its line), and each boundary is the first line that ends at or past a `1/count` share of
 * the bytes. Only whole ("\n"-terminated) lines end a range; the last range is open-ended, so
 * lines appended while the partitions are read belong to it.
 */
export async function partitionJsonl(
  path: string,
  stream: FsDocumentStream,
  count: number,
  signal: AbortSignal,
): Promise<PartitionPlan<FsDocumentStream>> {
  const outer: FsDocumentRange = stream.range ?? {}
  const { size } = await stat(path)
  const start = outer.after?.offset ?? 0
  const end = Math.min(size, outer.through?.offset ?? size)
  if (end <= start)
    return { partitions: [stream], reason: 'the file has no lines in this range: one partition' }
  const targets = Array.from(
    { length: count - 1 },
    (_, j) => start + ((end - start) * (j + 1)) / count,
  )
  const bounds: { line: number; offset: number }[] = []
  let line = outer.after?.line ?? 0
  let position = start
  let lines = 0
  const file = createReadStream(path, { start, end: end - 1, highWaterMark: 256 * 1024, signal })
  try {
    for await (const chunk of file as AsyncIterable<Buffer>) {
      throwIfAborted(signal)
      let from = 0
      for (;;) {
        const newline = chunk.indexOf(0x0a, from)
        if (newline === -1) break
        line++
        lines++
        const lineEnd = position + newline + 1
        if (bounds.length < targets.length && lineEnd >= targets[bounds.length]! && lineEnd < end) {
          bounds.push({ line, offset: lineEnd })
          while (bounds.length < targets.length && targets[bounds.length]! <= lineEnd)
            targets.splice(bounds.length, 1)
        }
        from = newline + 1
      }
      position += chunk.length
    }
  } finally {
    file.destroy()
  }
  return partitionPlan(
    splitAtBounds(stream, bounds),
    count,
    `${lines} line${lines === 1 ? '' : 's'}`,
  )
}
