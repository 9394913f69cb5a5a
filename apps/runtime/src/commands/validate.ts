import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { type Keyring, LocalConnectionStore } from '@nvisy/vault'
import {
  applyStoredConnections,
  connectionStorePath,
  localConnectionResolver,
  storeDestinationDigest,
  summaryStore,
  usesStoredConnections,
} from '../connections.js'
import { checkPipeline } from '../executor/check.js'
import { validatePipeline } from '../executor/validate.js'
import type { Pipeline } from '../pipeline-types.js'
import type { MapProviderRegistry } from '../registry.js'
import {
  type CliIo,
  COMMON_HELP,
  commonOptions,
  EXIT,
  json,
  KEY_HELP,
  loadPipeline,
  printIssues,
  registryFor,
  storeKeyring,
  UsageError,
} from './shared.js'

export const VALIDATE_HELP = `Usage: nvisy validate <pipeline.json> [--check] [options]

Checks a pipeline file: node and edge shapes, params and stream settings against each
provider's schemas, edge types. Nothing connects, unless --check.
  --check               also connect every node, check its credentials, and ask each sink
                        whether its destination exists or will be created
${KEY_HELP}
${COMMON_HELP}
Exit codes: 0 valid, 1 --check found a problem, 2 invalid pipeline or usage error.
`

export async function validateCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...commonOptions, check: { type: 'boolean' } },
    allowPositionals: true,
  })
  if (positionals.length !== 1)
    throw new UsageError('nvisy validate takes exactly one pipeline file')
  const { pipeline, file } = await loadPipeline(positionals[0], io)
  const registry = await registryFor(values, io, dirname(file))
  // Stored connections' params are in clear: validating needs the store file, not the master key.
  const storeIssues = usesStoredConnections(pipeline)
    ? await applyStoredConnections(
        pipeline,
        summaryStore(connectionStorePath(values.store, io.env, io.cwd)),
        registry,
      )
    : []
  const issues = storeIssues.length > 0 ? storeIssues : validatePipeline(pipeline, registry)
  if (issues.length > 0) {
    printIssues(io, issues)
    return EXIT.usage
  }
  if (values.check === true) return checkPipelineCommand(pipeline, registry, values, io)
  io.stdout.write(json({ valid: true }))
  return EXIT.completed
}

/** `validate --check`: the executor's `checkPipeline` connects every node and asks each sink. */
async function checkPipelineCommand(
  pipeline: Pipeline,
  registry: MapProviderRegistry,
  values: { store?: string | undefined; 'allow-insecure-key-file'?: boolean | undefined },
  io: CliIo,
): Promise<number> {
  let keyring: Keyring | undefined
  try {
    let store: LocalConnectionStore | undefined
    if (usesStoredConnections(pipeline)) {
      keyring = storeKeyring(values, io)
      store = new LocalConnectionStore({
        path: connectionStorePath(values.store, io.env, io.cwd),
        keyring,
        destinationDigest: storeDestinationDigest(registry),
      })
    }
    const issues = await checkPipeline({
      pipeline,
      registry,
      resolveConnection: localConnectionResolver(io.env, { store, registry }),
      signal: io.signal,
    })
    if (issues.length > 0) {
      io.stdout.write(json({ valid: true, checked: false, issues }))
      io.stderr.write(
        `nvisy: the check found problems:\n${issues.map((i) => `  ${i.path}: ${i.message} (${i.rule})\n`).join('')}`,
      )
      return EXIT.failed
    }
    io.stdout.write(json({ valid: true, checked: true }))
    return EXIT.completed
  } finally {
    keyring?.destroy()
  }
}
