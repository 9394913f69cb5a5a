import { parseArgs } from 'node:util'
import { VERSION } from '../version.js'
import { type CliIo, COMMON_HELP, commonOptions, EXIT, json, registryFor } from './shared.js'

export const PROVIDERS_HELP = `Usage: nvisy providers [options]

Prints the loaded providers: ids, versions, capabilities and JSON Schemas.
${COMMON_HELP}
`

export async function providersCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: commonOptions, allowPositionals: false })
  const registry = await registryFor(values, io)
  io.stdout.write(
    json({ runtime: { version: VERSION }, providers: registry.list().map((p) => p.describe()) }),
  )
  return EXIT.completed
}
