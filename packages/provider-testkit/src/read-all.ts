import type { GuardedConnection, ReadItem } from '@nvisy/provider-core'

export interface ReadAllOptions {
  /** Resume after the item this context came from. */
  after?: unknown
  /** Stop after this many items (the read is stopped early, as a consumer that breaks does). */
  limit?: number
  /** Defaults to a signal that never aborts. */
  signal?: AbortSignal
}

/** Every item of an async iterable, in order; at most `limit` (the rest is not pulled). */
export async function collect<T>(iterable: AsyncIterable<T>, limit?: number): Promise<T[]> {
  const items: T[] = []
  if (limit !== undefined && limit <= 0) return items
  for await (const item of iterable) {
    items.push(item)
    if (limit !== undefined && items.length >= limit) break
  }
  return items
}

/**
 * Read a stream to its end (or to `limit` items) and return the items with their contexts,
 * as tests of a provider do: `await readAll(connection, { table: 't' }, { after })`.
 */
export function readAll<TContext = unknown>(
  connection: GuardedConnection,
  stream: unknown,
  options: ReadAllOptions = {},
): Promise<ReadItem<TContext>[]> {
  const signal = options.signal ?? new AbortController().signal
  return collect(
    connection.read(stream, { after: options.after, signal }) as AsyncIterable<ReadItem<TContext>>,
    options.limit,
  )
}
