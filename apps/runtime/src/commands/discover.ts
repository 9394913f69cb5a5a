import { connectionCommand } from './check.js'
import { type CliIo, COMMON_HELP, CONNECTION_HELP, KEY_HELP } from './shared.js'

export const DISCOVER_HELP = `Usage: nvisy discover <provider> (--connection conn.json | --connection-id uuid | --params '{json}'|file) [options]

Connects and lists the streams (tables, buckets, collections...) the connection can read, with
their fields (columns) where the system has a schema.
  --format table|json   a table (one row per field: stream, type, data, field, field type,
                        nullable, key) or JSON ({"streams": [...]}, with each stream's settings
                        for a pipeline). Default: a table on a terminal, JSON otherwise (a pipe
                        or a file)
  --json                the same as --format json
${CONNECTION_HELP}
${KEY_HELP}
${COMMON_HELP}
Exit codes: as nvisy check.
`

/** `nvisy discover <provider>`: connects and lists the streams (check.ts holds what they share). */
export function discoverCommand(args: string[], io: CliIo): Promise<number> {
  return connectionCommand('discover', args, io)
}
