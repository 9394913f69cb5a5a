import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ProviderError, toProviderError } from '@nvisy/provider-core'
import { type Keyring, LocalConnectionStore } from '@nvisy/vault'
import {
  connectionStorePath,
  destinationOverrideIssues,
  openFromStore,
  resolveEnvReferences,
  storeDestinationDigest,
  storeError,
} from '../connections.js'
import { type DiscoverFormat, discoverFormat, streamsTable } from '../discover-output.js'
import {
  readCredentialsEnv,
  readParamsArgument,
  validateWithVariables,
} from './connection-input.js'
import {
  type CliIo,
  COMMON_HELP,
  CONNECTION_HELP,
  commonOptions,
  EXIT,
  json,
  KEY_HELP,
  providerNotLoaded,
  readJson,
  registryFor,
  storeKeyring,
  UsageError,
} from './shared.js'

export const CHECK_HELP = `Usage: nvisy check <provider> (--connection conn.json | --connection-id uuid | --params '{json}'|file) [options]

Connects and runs the provider's check: reachability, credentials, permissions.
conn.json is {"params": {...}, "credentials": {...}} ({"$env": "NAME"} values allowed), or
{"connectionId": "<uuid>", "params": {...}} to add non-destination params to a stored one.
${CONNECTION_HELP}
${KEY_HELP}
${COMMON_HELP}
Exit codes: 0 the check passed, 1 it failed (unreachable, unknown host, bad credentials),
2 usage or configuration error (bad flags or file, unknown provider, invalid params).
`

/** `nvisy check <provider>`: connects and runs the provider's check. */
export function checkCommand(args: string[], io: CliIo): Promise<number> {
  return connectionCommand('check', args, io)
}

/** What `nvisy check` and `nvisy discover` share: the connection input, connecting, the output. */
export async function connectionCommand(
  command: 'check' | 'discover',
  args: string[],
  io: CliIo,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...commonOptions,
      connection: { type: 'string' },
      'connection-id': { type: 'string' },
      params: { type: 'string' },
      'credentials-env': { type: 'string' },
      format: { type: 'string' },
      json: { type: 'boolean' },
    },
    allowPositionals: true,
  })
  const providerId = positionals[0]
  if (!providerId || positionals.length !== 1)
    throw new UsageError(`nvisy ${command} takes one provider id`)
  if (command === 'check' && (values.format !== undefined || values.json !== undefined))
    throw new UsageError('nvisy check prints JSON; --format and --json are for nvisy discover')
  let format: DiscoverFormat
  try {
    format = discoverFormat(values, io.stdout.isTTY === true)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const given = (['connection', 'connection-id', 'params'] as const).filter(
    (flag) => values[flag] !== undefined,
  )
  if (given.length > 1)
    throw new UsageError(
      `nvisy ${command} takes one of --connection, --connection-id and --params (got ${given.map((f) => `--${f}`).join(' and ')})`,
    )
  const credentialsEnv = values['credentials-env']
  if (credentialsEnv !== undefined && values['connection-id'] !== undefined)
    throw new UsageError(
      'a stored connection has its credentials: --credentials-env goes with --connection or --params',
    )
  let spec: { params?: unknown; credentials?: unknown; connectionId?: unknown }
  let near: string | undefined
  if (values['connection-id'] !== undefined) {
    spec = { connectionId: values['connection-id'] }
  } else if (values.connection !== undefined) {
    const connectionFile = resolve(io.cwd, values.connection)
    spec = (await readJson(connectionFile, 'connection file', io.cwd)) as typeof spec
    near = dirname(connectionFile)
  } else if (values.params !== undefined || credentialsEnv !== undefined) {
    spec = { params: await readParamsArgument(values.params, io) }
  } else {
    throw new UsageError(
      `nvisy ${command} needs --connection conn.json ({"params": {...}, "credentials": {...}}), --params with --credentials-env PREFIX, or --connection-id <uuid> (a stored connection)`,
    )
  }
  const registry = await registryFor(values, io, near)
  const provider = registry.get(providerId)
  if (!provider) throw providerNotLoaded(providerId, registry)
  let fromEnv: ReturnType<typeof readCredentialsEnv> | undefined
  if (credentialsEnv !== undefined) {
    if (spec.credentials !== undefined)
      throw new UsageError(
        'the connection file has credentials: give either those or --credentials-env, not both',
      )
    fromEnv = readCredentialsEnv(provider, credentialsEnv, io.env)
    spec = { ...spec, credentials: fromEnv.credentials }
  }
  let keyring: Keyring | undefined
  let input: { params: unknown; credentials: unknown }
  try {
    if (spec.connectionId !== undefined) {
      if (spec.credentials !== undefined) {
        throw new UsageError('give either connectionId or credentials, not both')
      }
      const id = String(spec.connectionId)
      keyring = storeKeyring(values, io)
      const store = new LocalConnectionStore({
        path: connectionStorePath(values.store, io.env, io.cwd),
        keyring,
        destinationDigest: storeDestinationDigest(registry),
      })
      // An override of a destination param is refused before anything is decrypted.
      const summary = await store.get(id).catch((error) => {
        throw storeError(error, store.path, id)
      })
      const overrides = destinationOverrideIssues(provider, spec.params, '/params', summary?.params)
      if (overrides.length > 0) {
        throw new ProviderError({
          kind: 'config',
          message: overrides.map((i) => `${i.path} ${i.message}`).join('; '),
          issues: overrides,
        })
      }
      const stored = await openFromStore(store, id)
      if (stored.provider !== providerId) {
        throw new ProviderError({
          kind: 'config',
          message: `connection ${id} is a ${stored.provider} connection, not ${providerId}`,
        })
      }
      input = {
        params: resolveEnvReferences(
          { ...stored.params, ...((spec.params as object | undefined) ?? {}) },
          io.env,
          '/params',
        ),
        credentials: stored.credentials,
      }
    } else {
      input = {
        params: resolveEnvReferences(spec.params ?? {}, io.env, '/params'),
        credentials: resolveEnvReferences(spec.credentials ?? {}, io.env, '/credentials'),
      }
    }
  } finally {
    keyring?.destroy()
  }
  // Invalid params or credentials are a usage error (2); anything after that is the check failing (1).
  validateWithVariables(provider, input, fromEnv)
  const started = performance.now()
  try {
    const connection = await provider.connect(input, { signal: io.signal })
    try {
      if (command === 'check') {
        await connection.check({ signal: io.signal })
        io.stdout.write(json({ ok: true, latencyMs: Math.round(performance.now() - started) }))
      } else {
        const streams = await connection.discover({ signal: io.signal })
        io.stdout.write(format === 'table' ? streamsTable(streams) : json({ streams }))
      }
    } finally {
      await connection.close().catch(() => {})
    }
    return EXIT.completed
  } catch (error) {
    const providerError = toProviderError(error)
    // A program reading JSON gets the error as JSON too; a person reads stderr.
    if (command === 'check' || format === 'json')
      io.stdout.write(json({ error: providerError.toJSON() }))
    io.stderr.write(`nvisy: ${command} failed: ${providerError.message}\n`)
    return EXIT.failed
  }
}
