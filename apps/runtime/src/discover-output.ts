import type { StreamInfo } from '@nvisy/provider-core'

/** How `nvisy discover` prints: a table for a person, JSON for a program. */
export type DiscoverFormat = 'table' | 'json'

/**
 * `--format table|json` or `--json`; without either, a table when stdout is a terminal and
 * JSON otherwise (a pipe or a file), as `nvisy run` shows progress only on a terminal.
 */
export function discoverFormat(
  flags: { format?: string | undefined; json?: boolean | undefined },
  stdoutIsTTY: boolean,
): DiscoverFormat {
  if (flags.json === true) {
    if (flags.format !== undefined && flags.format !== 'json')
      throw new RangeError(`--json and --format ${flags.format} disagree: give one of them`)
    return 'json'
  }
  if (flags.format === undefined) return stdoutIsTTY ? 'table' : 'json'
  if (flags.format === 'table' || flags.format === 'json') return flags.format
  throw new RangeError(`--format must be table or json (got ${JSON.stringify(flags.format)})`)
}

/**
 * Names come from the system being discovered: control characters (which a terminal would
 * act on: escape sequences, carriage returns) are shown as `\uXXXX` instead.
 */
function visible(text: string): string {
  let out = ''
  for (const char of text) {
    const code = char.codePointAt(0)!
    out +=
      code < 0x20 || (code >= 0x7f && code <= 0x9f)
        ? `\\u${code.toString(16).padStart(4, '0')}`
        : char
  }
  return out
}

/**
 * The streams as a table: one row per field (column), the stream's name, type and data kind
 * on its first row; a stream with no fields gets one row. Ends with the number of streams.
 */
export function streamsTable(streams: readonly StreamInfo[]): string {
  if (streams.length === 0) return 'no streams found\n'
  const rows: string[][] = [['stream', 'type', 'data', 'field', 'field type', 'nullable', 'key']]
  for (const stream of streams) {
    const head = [visible(stream.name), visible(stream.type), stream.data]
    const fields = stream.fields ?? []
    if (fields.length === 0) {
      rows.push([...head, '', '', '', ''])
      continue
    }
    fields.forEach((field, i) => {
      rows.push([
        ...(i === 0 ? head : ['', '', '']),
        visible(field.name),
        visible(field.type),
        field.nullable === undefined ? '' : field.nullable ? 'yes' : 'no',
        field.primaryKey ? 'primary' : '',
      ])
    })
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)))
  const lines = rows.map((row) =>
    row
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  )
  const count = `${streams.length} stream${streams.length === 1 ? '' : 's'}`
  return `${lines.join('\n')}\n${count}\n`
}
