import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { ProviderError } from '@nvisy/provider-core'
import type { Keyring } from '@nvisy/vault'
import { loadStoreKeyring } from '../connections.js'
import { parseJsonText } from '../json-text.js'
import { CONFIG_FILE_NAME, loadProviders, providerPackages, readRuntimeConfig } from '../loader.js'
import type { Pipeline } from '../pipeline-types.js'
import type { MapProviderRegistry } from '../registry.js'

// What several commands share: the CLI's streams and exit codes, usage errors, JSON files the
// user wrote, the common options, the provider registry, the store's master key, help pieces.

export const EXIT = { completed: 0, failed: 1, usage: 2, cancelled: 3 } as const

/** What the CLI talks to: streams, environment, working directory, and a cancel signal. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean }
  stderr: { write(text: string): unknown; isTTY?: boolean }
  env: NodeJS.ProcessEnv
  cwd: string
  /** Aborted on the first SIGINT/SIGTERM. */
  signal: AbortSignal
}

export const COMMON_HELP = `  --config file         nvisy.config.json naming the provider packages
  --provider name       a provider package to load (repeatable, or name,name)
  --store file          the local connection store (default NVISY_CONNECTIONS_FILE, ~/.nvisy/connections.json)
  -h, --help            this help`

export const CONNECTION_HELP = `  --params '{json}'|file   the connection's params (instead of a connection file)
  --credentials-env PREFIX  the credentials from variables: each field of the provider's
                            credentials schema from PREFIX_FIELD (password from PG_PASSWORD,
                            a nested tls.ca from PG_TLS__CA; non-strings as JSON)`

export const KEY_HELP = `  --allow-insecure-key-file  use a NVISY_MASTER_KEY_FILE that group or others can read (warns)`

export class UsageError extends Error {}

/** A mistake inside a file the user wrote: exit 2 like a usage error, without the usage hint. */
export class FileSyntaxError extends UsageError {}

export function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`
}

/** A path as the user would write it: relative to the working directory when inside it. */
export function shownPath(path: string, cwd: string): string {
  const shown = relative(cwd, path)
  return shown === '' || shown.startsWith('..') || isAbsolute(shown) ? path : shown
}

/**
 * A JSON file the user wrote (pipeline, connection, params, credentials). A syntax error is
 * a usage error `file:line:column: rule` (exit 2), never quoting the text.
 */
export async function readJson(path: string, what: string, cwd: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
  try {
    return parseJsonText(text, shownPath(path, cwd))
  } catch (error) {
    throw new FileSyntaxError(`${(error as Error).message} (the ${what} is not valid JSON)`)
  }
}

export interface Common {
  config?: string | undefined
  provider?: string[] | undefined
}

export async function registryFor(
  flags: Common,
  io: CliIo,
  near?: string,
  extraPackages: string[] = [],
): Promise<MapProviderRegistry> {
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
    flags: [...(flags.provider ?? []), ...extraPackages],
    env: io.env.NVISY_PROVIDERS,
  })
  return loadProviders(packages, { from: configPath ? dirname(configPath) : io.cwd })
}

export const commonOptions = {
  config: { type: 'string' },
  provider: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
  store: { type: 'string' },
  'allow-insecure-key-file': { type: 'boolean' },
} as const

/** The master keyring for the local store, honouring `--allow-insecure-key-file`. */
export function storeKeyring(
  values: { 'allow-insecure-key-file'?: boolean | undefined },
  io: CliIo,
): Keyring {
  return loadStoreKeyring(io.env, {
    allowInsecureKeyFile: values['allow-insecure-key-file'] === true,
    warn: (message) => io.stderr.write(`nvisy: ${message}\n`),
  })
}

export async function loadPipeline(
  path: string | undefined,
  io: CliIo,
): Promise<{ pipeline: Pipeline; file: string }> {
  if (!path) throw new UsageError('a pipeline file is required')
  const file = resolve(io.cwd, path)
  return { pipeline: (await readJson(file, 'pipeline file', io.cwd)) as Pipeline, file }
}

export function printIssues(
  io: CliIo,
  issues: { path: string; rule: string; message: string }[],
): void {
  io.stderr.write(
    `nvisy: the pipeline is not valid:\n${issues.map((i) => `  ${i.path}: ${i.message} (${i.rule})\n`).join('')}`,
  )
}

export function providerNotLoaded(
  providerId: string,
  registry: MapProviderRegistry,
  hint = '',
): ProviderError {
  return new ProviderError({
    kind: 'config',
    message: `provider ${providerId} is not loaded (loaded: ${
      registry
        .list()
        .map((p) => p.id)
        .join(', ') || 'none'
    })${hint}`,
  })
}
