import {
  COLUMNS_WIRE,
  type ColumnPusher,
  columnBatches,
  isTaggedValue,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  type SqlValue,
  type TaggedValueType,
  type WireOffer,
  type WireReadOptions,
} from '@nvisy/provider-core'
import type { MysqlClient } from './mysql-client.js'
import { describeTable } from './mysql-prepare.js'
import type { MysqlContext, MysqlStream } from './mysql-schemas.js'
import { planRead, type ReadPlan, readPages } from './mysql-source.js'
import { decoderTag } from './mysql-values.js'

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

type Pusher = ColumnPusher<unknown[]>

/**
 * A row-to-columns function compiled once per read, as the row builder is: each output
 * column's value decoded and pushed onto its array; it returns the row's size in source
 * text (strings by length, buffers by bytes, other values as 8), for the byte bound.
 */
function compilePusher(plan: ReadPlan, tags: readonly (TaggedValueType | undefined)[]): Pusher {
  const lines: string[] = ['let size = 0']
  for (let i = 0; i < plan.outputCount; i++) {
    const decode = `r${i} === null ? null : d[${i}](r${i}, row)`
    lines.push(
      `const r${i} = row[${i}]`,
      !plan.decoders[i]
        ? `cols[${i}].push(r${i})`
        : tags[i] === undefined
          ? `cols[${i}].push(${decode})`
          : // A tagged column holds the text: the tagged value made here dies young.
            `{ const v = ${decode}; cols[${i}].push(v === null ? null : v.$type === t[${i}] ? v.value : untagged(${i}, v)) }`,
      `size += typeof r${i} === 'string' ? r${i}.length : r${i} !== null && typeof r${i} === 'object' && typeof r${i}.length === 'number' ? r${i}.length : 8`,
    )
  }
  lines.push('return size')
  const compile = new Function(
    'd',
    't',
    'untagged',
    `return function push(row, cols) {\n${lines.join('\n')}\n}`,
  )
  const untagged = (i: number, value: SqlValue) => {
    throw new ProviderError({
      kind: 'internal',
      message: `column ${JSON.stringify(plan.names[i])} decoded to a ${isTaggedValue(value) ? `tagged ${value.$type}` : typeof value} value, not a tagged ${tags[i]}`,
    })
  }
  return compile(plan.decoders, tags, untagged) as Pusher
}

/** Read a stream in `nvisy-columns` batches (see above). */
export async function* readColumns(
  client: MysqlClient,
  stream: MysqlStream,
  options: ReadOptions<MysqlContext>,
  wire: WireReadOptions,
): AsyncGenerator<ReadItem<MysqlContext>, void, undefined> {
  const plan = await planRead(client, stream, options.signal)
  yield* columnBatches(
    readPages(client, stream, options, plan),
    () => {
      const tags = plan.selected
        .slice(0, plan.outputCount)
        .map((column, i) => (plan.decoders[i] ? decoderTag(column) : undefined))
      return {
        names: plan.names.slice(0, plan.outputCount),
        push: compilePusher(plan, tags),
        tags: tags.some((tag) => tag !== undefined) ? tags : undefined,
      }
    },
    wire,
  )
}
