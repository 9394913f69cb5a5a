import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { type Logger, ProviderError, toProviderError } from '@nvisy/provider-core'
import { FileCheckpointStore } from './checkpoints/file-checkpoint-store.js'
import { localConnectionResolver, resolveEnvReferences } from './connections.js'
import { executePipeline } from './executor/execute.js'
import type { RunEvent } from './executor/types.js'
import { validatePipeline } from './executor/validate.js'
import { CONFIG_FILE_NAME, loadProviders, providerPackages, readRuntimeConfig } from './loader.js'
import { createLogger } from './logger.js'
import type { Pipeline } from './pipeline-types.js'
import { ProgressLine } from './progress.js'
import type { MapProviderRegistry } from './registry.js'
import { VERSION } from './version.js'

export const EXIT = { completed: 0, failed: 1, usage: 2, cancelled: 3 } as const

/** What the CLI talks to: streams, environment, working directory, and a cancel signal. */
export interface CliIo {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown; isTTY?: boolean }
  env: NodeJS.ProcessEnv
  cwd: string
  /** Aborted on the first SIGINT/SIGTERM. */
  signal: AbortSignal
}

const USAGE = `nvisy ${VERSION}: run Nvisy pipelines

Usage:
  nvisy run <pipeline.json> [--config nvisy.config.json] [--checkpoints .nvisy/checkpoints.json] [--no-resume] [--run-id id]
  nvisy validate <pipeline.json> [--config ...]
  nvisy providers [--config ...]
  nvisy check <provider> --connection conn.json [--config ...]
  nvisy discover <provider> --connection conn.json [--config ...]
  nvisy serve [--nats nats://127.0.0.1:4222] [--server-key X...] [--dev-plain-credentials] [--config ...]

Providers are the packages named in nvisy.config.json ({"providers": [...]}, looked up next to
the pipeline file, then in the working directory), --provider name[,name] and NVISY_PROVIDERS.
Connection values may be {"$env": "NAME"} references, resolved when the run starts.
serve reads NVISY_NATS_URL, NVISY_SERVER_PUBLIC_KEY and NVISY_RUNTIME_SEED from the environment.

Exit codes: 0 completed, 1 run failed, 2 usage or validation error, 3 cancelled.
`

class UsageError extends Error {}

function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${what} ${path} is not valid JSON: ${(error as Error).message}`)
  }
}

interface Common {
  config?: string | undefined
  provider?: string[] | undefined
}

async function registryFor(flags: Common, io: CliIo, near?: string): Promise<MapProviderRegistry> {
  let configPath = flags.config ? resolve(io.cwd, flags.config) : undefined
  if (!configPath) {
    const candidates = [
      near ? join(near, CONFIG_FILE_NAME) : undefined,
      join(io.cwd, CONFIG_FILE_NAME),
    ]
    configPath = candidates.find((c): c is string => c !== undefined && existsSync(c))
  }
  const config = configPath ? await readRuntimeConfig(configPath) : undefined
  const packages = providerPackages({
    config,
    flags: flags.provider ?? [],
    env: io.env.NVISY_PROVIDERS,
  })
  return loadProviders(packages, { from: configPath ? dirname(configPath) : io.cwd })
}

const commonOptions = {
  config: { type: 'string' },
  provider: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const

/** The `nvisy` command: returns the exit code instead of exiting, so tests run it in-process. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, io)
      case 'validate':
        return await validateCommand(rest, io)
      case 'providers':
        return await providersCommand(rest, io)
      case 'check':
      case 'discover':
        return await connectionCommand(command, rest, io)
      case 'serve':
        return await serveCommand(rest, io)
      case '--version':
      case '-v':
        io.stdout.write(`${VERSION}\n`)
        return EXIT.completed
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE)
        return command === undefined ? EXIT.usage : EXIT.completed
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.stderr.write(`nvisy: ${(error as Error).message}\nRun nvisy --help for usage.\n`)
      return EXIT.usage
    }
    const providerError = toProviderError(error)
    io.stderr.write(`nvisy: ${providerError.message}\n`)
    return providerError.kind === 'config' ? EXIT.usage : EXIT.failed
  }
}

async function loadPipeline(
  path: string | undefined,
  io: CliIo,
): Promise<{ pipeline: Pipeline; file: string }> {
  if (!path) throw new UsageError('a pipeline file is required')
  const file = resolve(io.cwd, path)
  return { pipeline: (await readJson(file, 'pipeline file')) as Pipeline, file }
}

function printIssues(io: CliIo, issues: { path: string; rule: string; message: string }[]): void {
  io.stderr.write(
    `nvisy: the pipeline is not valid:\n${issues.map((i) => `  ${i.path}: ${i.message} (${i.rule})\n`).join('')}`,
  )
}

async function validateCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: commonOptions,
    allowPositionals: true,
  })
  const { pipeline, file } = await loadPipeline(positionals[0], io)
  const registry = await registryFor(values, io, dirname(file))
  const issues = validatePipeline(pipeline, registry)
  if (issues.length > 0) {
    printIssues(io, issues)
    return EXIT.usage
  }
  io.stdout.write(json({ valid: true }))
  return EXIT.completed
}

async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...commonOptions,
      checkpoints: { type: 'string', default: '.nvisy/checkpoints.json' },
      'no-resume': { type: 'boolean' },
      'run-id': { type: 'string' },
      'log-level': { type: 'string' },
    },
    allowPositionals: true,
  })
  if (positionals.length !== 1) throw new UsageError('nvisy run takes exactly one pipeline file')
  const { pipeline, file } = await loadPipeline(positionals[0], io)
  const registry = await registryFor(values, io, dirname(file))
  const issues = validatePipeline(pipeline, registry)
  if (issues.length > 0) {
    printIssues(io, issues)
    return EXIT.usage
  }
  const tty = io.stderr.isTTY === true
  const logger = createLogger(io.stderr, values['log-level'] ?? (tty ? 'warn' : 'info'))
  const progress = tty ? new ProgressLine((text) => io.stderr.write(text)) : undefined
  const runId = values['run-id'] ?? randomUUID()
  const onEvent = (event: RunEvent) => {
    if (event.type === 'progress') {
      if (progress) progress.update(event.nodes)
      else logger.info({ event: 'progress', nodes: event.nodes }, 'progress')
      return
    }
    if (progress && event.type === 'item_failed') {
      progress.end()
      io.stderr.write(`item failed at ${event.nodeId}: ${event.item}: ${event.error.message}\n`)
      return
    }
    if (!progress) logger.info({ event }, event.type)
  }
  const summary = await executePipeline({
    runId,
    pipeline,
    registry,
    resolveConnection: localConnectionResolver(io.env),
    checkpoints: new FileCheckpointStore(resolve(io.cwd, values.checkpoints)),
    onEvent,
    signal: io.signal,
    resume: values['no-resume'] !== true,
    logger,
  })
  progress?.end()
  io.stdout.write(json({ runId, pipelineId: pipeline.id, ...summary }))
  if (summary.status === 'failed') {
    io.stderr.write(`nvisy: run failed: ${summary.error?.message ?? 'unknown error'}\n`)
    return summary.error?.kind === 'config' ? EXIT.usage : EXIT.failed
  }
  return summary.status === 'cancelled' ? EXIT.cancelled : EXIT.completed
}

async function providersCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: commonOptions, allowPositionals: false })
  const registry = await registryFor(values, io)
  io.stdout.write(
    json({ runtime: { version: VERSION }, providers: registry.list().map((p) => p.describe()) }),
  )
  return EXIT.completed
}

async function connectionCommand(
  command: 'check' | 'discover',
  args: string[],
  io: CliIo,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...commonOptions, connection: { type: 'string' } },
    allowPositionals: true,
  })
  const providerId = positionals[0]
  if (!providerId || positionals.length !== 1)
    throw new UsageError(`nvisy ${command} takes one provider id`)
  if (!values.connection)
    throw new UsageError(
      `nvisy ${command} needs --connection conn.json ({"params": {...}, "credentials": {...}})`,
    )
  const connectionFile = resolve(io.cwd, values.connection)
  const spec = (await readJson(connectionFile, 'connection file')) as {
    params?: unknown
    credentials?: unknown
  }
  const registry = await registryFor(values, io, dirname(connectionFile))
  const provider = registry.get(providerId)
  if (!provider) {
    throw new ProviderError({
      kind: 'config',
      message: `provider ${providerId} is not loaded (loaded: ${
        registry
          .list()
          .map((p) => p.id)
          .join(', ') || 'none'
      })`,
    })
  }
  const input = {
    params: resolveEnvReferences(spec.params ?? {}, io.env, '/params'),
    credentials: resolveEnvReferences(spec.credentials ?? {}, io.env, '/credentials'),
  }
  const started = performance.now()
  try {
    const connection = await provider.connect(input, { signal: io.signal })
    try {
      if (command === 'check') {
        await connection.check({ signal: io.signal })
        io.stdout.write(json({ ok: true, latencyMs: Math.round(performance.now() - started) }))
      } else {
        io.stdout.write(json({ streams: await connection.discover({ signal: io.signal }) }))
      }
    } finally {
      await connection.close().catch(() => {})
    }
    return EXIT.completed
  } catch (error) {
    const providerError = toProviderError(error)
    io.stdout.write(json({ error: providerError.toJSON() }))
    io.stderr.write(`nvisy: ${command} failed: ${providerError.message}\n`)
    return providerError.kind === 'config' ? EXIT.usage : EXIT.failed
  }
}

async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...commonOptions,
      nats: { type: 'string' },
      'server-key': { type: 'string' },
      'dev-plain-credentials': { type: 'boolean' },
      'log-level': { type: 'string' },
    },
    allowPositionals: false,
  })
  const registry = await registryFor(values, io)
  const logger: Logger = createLogger(io.stderr, values['log-level'] ?? 'info')
  const { startDispatcher } = await import('./nats/index.js')
  const servers = values.nats ?? io.env.NVISY_NATS_URL ?? 'nats://127.0.0.1:4222'
  const dispatcher = await startDispatcher({
    servers: splitServers(servers),
    registry,
    execute: executePipeline,
    serverPublicKey: values['server-key'] ?? io.env.NVISY_SERVER_PUBLIC_KEY,
    runtimeSeed: io.env.NVISY_RUNTIME_SEED,
    allowPlainCredentials: values['dev-plain-credentials'] === true,
    logger,
    version: VERSION,
  })
  logger.info(
    {
      instanceId: dispatcher.instanceId,
      publicKey: dispatcher.publicKey,
      providers: registry.list().map((p) => p.id),
    },
    'serving',
  )
  await new Promise<void>((resolveWait) => {
    if (io.signal.aborted) resolveWait()
    else io.signal.addEventListener('abort', () => resolveWait(), { once: true })
  })
  logger.info({}, 'draining')
  await dispatcher.drain()
  return EXIT.completed
}

function splitServers(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
}
