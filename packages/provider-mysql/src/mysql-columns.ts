import {
  COLUMNS_WIRE,
  type ReadItem,
  type ReadOptions,
  type SqlValue,
  type WireOffer,
  type WireReadOptions,
} from '@nvisy/provider-core'
import type { MysqlClient } from './mysql-client.js'
import { describeTable } from './mysql-prepare.js'
import type { MysqlContext, MysqlStream } from './mysql-schemas.js'
import { planRead, type ReadPlan, readPages } from './mysql-source.js'

/*
 * Batches of rows held by column (`nvisy-columns`): the same keyset pages and the same
 * decoded values as a row-by-row read, pushed into one array per column instead of an
 * object per row, and handed over in items of up to `maxRows` rows and about `maxBytes`
 * bytes of source text, each with the context of its last row (what a row-by-row read gives
 * for that row, so either kind of read resumes the other).
 */

/** `wireOffer` for `nvisy-columns`: the columns a read of this stream yields and their types. */
export async function columnsOffer(
  client: MysqlClient,
  stream: MysqlStream,
  signal: AbortSignal,
): Promise<WireOffer> {
  const plan = await planRead(client, stream, signal)
  return {
    format: COLUMNS_WIRE,
    columns: plan.names.slice(0, plan.outputCount),
    schema: await describeTable(client, stream, signal),
  }
}

type Pusher = (row: unknown[], columns: SqlValue[][]) => number

/**
 * A row-to-columns function compiled once per read, as the row builder is: each output
 * column's value decoded and pushed onto its array; it returns the row's size in source
 * text (strings by length, buffers by bytes, other values as 8), for the byte bound.
 */
function compilePusher(plan: ReadPlan): Pusher {
  const lines: string[] = ['let size = 0']
  for (let i = 0; i < plan.outputCount; i++) {
    lines.push(
      `const r${i} = row[${i}]`,
      plan.decoders[i]
        ? `cols[${i}].push(r${i} === null ? null : d[${i}](r${i}, row))`
        : `cols[${i}].push(r${i})`,
      `size += typeof r${i} === 'string' ? r${i}.length : r${i} !== null && typeof r${i} === 'object' && typeof r${i}.length === 'number' ? r${i}.length : 8`,
    )
  }
  lines.push('return size')
  const compile = new Function('d', `return function push(row, cols) {\n${lines.join('\n')}\n}`)
  return compile(plan.decoders) as Pusher
}

/** Read a stream in `nvisy-columns` items (see above). */
export async function* readColumns(
  client: MysqlClient,
  stream: MysqlStream,
  options: ReadOptions<MysqlContext>,
  wire: WireReadOptions,
): AsyncGenerator<ReadItem<MysqlContext>, void, undefined> {
  const plan = await planRead(client, stream, options.signal)
  const names = plan.names.slice(0, plan.outputCount)
  const push = compilePusher(plan)
  const maxRows = Math.max(1, Math.floor(wire.maxRows))
  const maxBytes = Math.max(1, Math.floor(wire.maxBytes))
  const maxAgeMs = wire.maxAgeMs ?? Number.POSITIVE_INFINITY
  const fresh = () => names.map((): SqlValue[] => [])
  let columns = fresh()
  let rows = 0
  let bytes = 0
  let since = 0
  let last: unknown[] | undefined
  let build: ((row: unknown[]) => ReadItem<MysqlContext>) | undefined
  const cut = (): ReadItem<MysqlContext> => {
    const item: ReadItem<MysqlContext> = {
      data: {
        kind: 'record',
        values: {},
        wire: { format: COLUMNS_WIRE, columns: names, rows, values: columns },
      },
      context: build!(last!).context,
    }
    columns = fresh()
    rows = 0
    bytes = 0
    return item
  }
  for await (const page of readPages(client, stream, options, plan)) {
    build = page.build
    const now = Date.now()
    if (rows === 0) since = now
    // A batch that has waited long enough ends with this page's first row.
    let late = now - since >= maxAgeMs
    for (const row of page.rows) {
      bytes += push(row, columns)
      rows++
      last = row
      if (late || rows >= maxRows || bytes >= maxBytes) {
        late = false
        since = now
        yield cut()
      }
    }
  }
  if (rows > 0) yield cut()
}
