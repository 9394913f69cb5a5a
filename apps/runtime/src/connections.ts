import { randomBytes } from 'node:crypto'
import { isAbsolute, resolve } from 'node:path'
import {
  canonicalJson,
  destinationDigest,
  destinationParams,
  type Provider,
  ProviderError,
  type ValidationIssue,
} from '@nvisy/provider-core'
import {
  defaultStorePath,
  isUuid,
  type Keyring,
  LocalConnectionStore,
  loadKeyring,
  MASTER_KEY_ENV,
  MASTER_KEY_FILE_ENV,
  VaultError,
} from '@nvisy/vault'
import type { Pipeline, PipelineNode } from './pipeline-types.js'

/** `{ "$env": "NAME" }` in a pipeline file: the value of that environment variable at run time. */
export interface EnvReference {
  $env: string
}

export function isEnvReference(value: unknown): value is EnvReference {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as EnvReference).$env === 'string'
  )
}

/**
 * A deep copy of `value` with every `{ "$env": "NAME" }` replaced by the variable's value.
 * A variable that is not set is a `config` error naming the field path and the variable,
 * never a value.
 */
export function resolveEnvReferences(value: unknown, env: NodeJS.ProcessEnv, path = ''): unknown {
  if (isEnvReference(value)) {
    const resolved = env[value.$env]
    if (resolved === undefined) {
      throw new ProviderError({
        kind: 'config',
        message: `${path || '/'} refers to environment variable ${value.$env}, which is not set`,
        issues: [
          {
            path: path || '/',
            rule: 'env',
            message: `environment variable ${value.$env} is not set`,
          },
        ],
      })
    }
    return resolved
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveEnvReferences(v, env, `${path}/${i}`))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [key, v] of Object.entries(value))
      out[key] = resolveEnvReferences(v, env, `${path}/${key}`)
    return out
  }
  return value
}

/** Options of the embedded resolver. */
export interface LocalResolverOptions {
  /** The local connection store that nodes with a `connectionId` are opened from. */
  store?: LocalConnectionStore | undefined
  /**
   * The loaded providers, to tell a stored connection's destination params (which a pipeline
   * may not override) from the others. Without it every param counts as a destination.
   */
  registry?: { get(id: string): Provider | undefined } | undefined
}

/** What the runtime's stores bind each entry to: provider-core's `destinationDigest`. */
export function storeDestinationDigest(registry: {
  get(id: string): Provider | undefined
}): (provider: string, params: Record<string, unknown>) => string {
  return (providerId, params) => {
    const provider = registry.get(providerId)
    if (!provider) {
      throw new ProviderError({
        kind: 'config',
        message: `provider ${providerId} is not loaded: its stored connections cannot be opened (name its package in nvisy.config.json, --provider or NVISY_PROVIDERS)`,
      })
    }
    return destinationDigest(provider.definition.params, params)
  }
}

/** The value at a JSON pointer (`/a/b`), or undefined. */
function valueAt(value: unknown, pointer: string): unknown {
  let current = value
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

/**
 * Issues for params a pipeline (or connection file) gives next to a stored connection id that
 * decide where its credentials go: the params its provider marks `Destination()` (every param
 * when it marks none, or when the provider is not known). The stored credentials are bound to
 * the stored destination, so such an override could only send them somewhere else.
 */
export function destinationOverrideIssues(
  provider: Provider | undefined,
  params: unknown,
  at: string,
  /** The stored params: a given value equal to the stored one is no override. */
  stored?: Record<string, unknown>,
): ValidationIssue[] {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return []
  const given = params as Record<string, unknown>
  if (Object.keys(given).length === 0) return []
  const pointers = provider
    ? Object.keys(destinationParams(provider.definition.params, given))
    : ['/']
  const fields = (
    pointers.includes('/') ? Object.keys(given).map((k) => `/${k}`) : pointers
  ).filter(
    (pointer) =>
      stored === undefined ||
      canonicalJson(valueAt(given, pointer)) !== canonicalJson(valueAt(stored, pointer)),
  )
  return fields.map((pointer) => ({
    path: `${at}${pointer}`,
    rule: 'destination',
    message:
      'is a destination param of the stored connection (it decides where its credentials are sent) and cannot be overridden; add another connection for another destination',
  }))
}

/**
 * The embedded runtime's `resolveConnection`: plain credentials and params from the pipeline
 * file with environment references resolved, or, for a node whose connection is
 * `{ "connectionId": "<uuid>" }`, the stored params (the node's own params override them key by
 * key) and the stored credentials, decrypted at this call and held by nothing here afterwards.
 * Sealed credentials need the NATS runtime's key.
 */
export function localConnectionResolver(
  env: NodeJS.ProcessEnv = process.env,
  options: LocalResolverOptions = {},
) {
  return async (node: PipelineNode): Promise<{ credentials: unknown; params: unknown }> => {
    if (node.connection.connectionId !== undefined) {
      return openStoredConnection(node, env, options)
    }
    if (node.connection.sealedCredentials !== undefined) {
      throw new ProviderError({
        kind: 'config',
        message: `node ${node.id}: sealedCredentials can only be opened by a runtime serving NATS (nvisy serve); use credentials with {"$env": "NAME"} references locally`,
      })
    }
    return {
      params: resolveEnvReferences(node.connection.params, env, `/connection/params`),
      credentials: resolveEnvReferences(
        node.connection.credentials ?? {},
        env,
        `/connection/credentials`,
      ),
    }
  }
}

async function openStoredConnection(
  node: PipelineNode,
  env: NodeJS.ProcessEnv,
  options: LocalResolverOptions,
): Promise<{ credentials: unknown; params: unknown }> {
  const { store } = options
  const id = node.connection.connectionId as string
  const conflicts = storedConnectionIssues(node.connection, '/connection')
  if (conflicts.length > 0) {
    throw new ProviderError({
      kind: 'config',
      message: `node ${node.id}: ${conflicts.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues: conflicts,
    })
  }
  if (!store) {
    throw new ProviderError({
      kind: 'config',
      message: `node ${node.id}: connection ${id} is a stored connection, but no local connection store is open`,
    })
  }
  const opened = await openFromStore(store, id)
  if (opened.provider !== node.provider) {
    throw new ProviderError({
      kind: 'config',
      message: `node ${node.id}: connection ${id} is a ${opened.provider} connection, but the node uses provider ${node.provider}`,
    })
  }
  // After applyStoredConnections the node's params hold the stored ones too: only a value
  // that differs from the stored one is an override.
  const overrides = destinationOverrideIssues(
    options.registry?.get(node.provider),
    node.connection.params,
    '/connection/params',
    opened.params,
  )
  if (overrides.length > 0) {
    throw new ProviderError({
      kind: 'config',
      message: `node ${node.id}: ${overrides.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues: overrides,
    })
  }
  return {
    params: resolveEnvReferences(
      { ...opened.params, ...(node.connection.params ?? {}) },
      env,
      '/connection/params',
    ),
    credentials: opened.credentials,
  }
}

/** A stored connection with its credentials decrypted, vault errors turned into clear `config` errors. */
export async function openFromStore(
  store: LocalConnectionStore,
  id: string,
): Promise<{ provider: string; params: Record<string, unknown>; credentials: unknown }> {
  try {
    return await store.open(id)
  } catch (error) {
    throw storeError(error, store.path, id)
  }
}

/** Issues of a connection that names a stored connection id (format, and no inline credentials). */
export function storedConnectionIssues(
  connection: PipelineNode['connection'],
  at: string,
): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  if (!isUuid(connection.connectionId)) {
    issues.push({
      path: `${at}/connectionId`,
      rule: 'uuid',
      message: 'must be the UUID of a connection in the local store (nvisy connections list)',
    })
  }
  for (const key of ['credentials', 'sealedCredentials'] as const) {
    if (connection[key] !== undefined) {
      issues.push({
        path: `${at}/${key}`,
        rule: 'oneOf',
        message: `give either connectionId or ${key}, not both (the stored connection has its credentials)`,
      })
    }
  }
  return issues
}

/** The store file: `--store`, else `NVISY_CONNECTIONS_FILE`, else `~/.nvisy/connections.json`. */
export function connectionStorePath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): string {
  const path = flag ?? defaultStorePath(env)
  return isAbsolute(path) ? path : resolve(cwd, path)
}

/**
 * The master keyring from `NVISY_MASTER_KEY` / `NVISY_MASTER_KEY_FILE` (and the rotation
 * variables), with vault errors as `config` errors that name the variable, never a key.
 */
export function loadStoreKeyring(
  env: NodeJS.ProcessEnv,
  options: {
    /** Use a key file group or others can read, after `warn` (`--allow-insecure-key-file`). */
    allowInsecureKeyFile?: boolean | undefined
    warn?: ((message: string) => void) | undefined
  } = {},
): Keyring {
  try {
    return loadKeyring({
      env,
      allowInsecureKeyFile: options.allowInsecureKeyFile === true,
      onInsecureKeyFile: (path, mode) =>
        options.warn?.(
          `warning: the master key file ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); used because of --allow-insecure-key-file. Fix it with: chmod 600 ${path}`,
        ),
    })
  } catch (error) {
    throw storeError(error)
  }
}

/**
 * A store for reading connection summaries only (`list`, `get`, `remove`): those never
 * decrypt, so it holds a random throwaway key instead of needing the master key.
 */
export function summaryStore(path: string): LocalConnectionStore {
  const throwaway = randomBytes(32)
  try {
    return new LocalConnectionStore({ path, masterKey: new Uint8Array(throwaway) })
  } finally {
    throwaway.fill(0)
  }
}

/**
 * Fill in the params of every node whose connection is `{ "connectionId": ... }` from the
 * store (params are kept in clear there; nothing is decrypted), so the pipeline can be
 * validated as usual. The node's own params override stored ones key by key. Returns issues
 * for unknown ids, malformed ids, inline credentials next to an id, and provider mismatches.
 */
export async function applyStoredConnections(
  pipeline: Pipeline,
  store: LocalConnectionStore,
  registry?: { get(id: string): Provider | undefined },
): Promise<ValidationIssue[]> {
  const issues: ValidationIssue[] = []
  const nodes = Array.isArray(pipeline?.nodes) ? pipeline.nodes : []
  for (const [i, node] of nodes.entries()) {
    const connection = node?.connection as PipelineNode['connection'] | undefined
    if (connection === null || typeof connection !== 'object') continue
    if (connection.connectionId === undefined) continue
    const at = `/nodes/${i}/connection`
    const own = storedConnectionIssues(connection, at)
    if (own.length > 0) {
      issues.push(...own)
      continue
    }
    let summary: Awaited<ReturnType<LocalConnectionStore['get']>>
    try {
      summary = await store.get(connection.connectionId)
    } catch (error) {
      throw storeError(error, store.path)
    }
    if (!summary) {
      issues.push({
        path: `${at}/connectionId`,
        rule: 'stored',
        message: `no connection ${connection.connectionId} in the local store ${store.path} (nvisy connections list)`,
      })
      continue
    }
    if (summary.provider !== node.provider) {
      issues.push({
        path: `${at}/connectionId`,
        rule: 'provider',
        message: `connection ${summary.id} is a ${summary.provider} connection, but the node uses provider ${node.provider}`,
      })
      continue
    }
    const overrides = destinationOverrideIssues(
      registry?.get(node.provider),
      connection.params,
      `${at}/params`,
      summary.params,
    )
    if (overrides.length > 0) {
      issues.push(...overrides)
      continue
    }
    const ownParams =
      connection.params !== null && typeof connection.params === 'object' ? connection.params : {}
    connection.params = { ...summary.params, ...ownParams }
  }
  return issues
}

/** True when some node of the pipeline names a stored connection. */
export function usesStoredConnections(pipeline: Pipeline): boolean {
  return (
    Array.isArray(pipeline?.nodes) &&
    pipeline.nodes.some(
      (node) =>
        node?.connection !== null &&
        typeof node?.connection === 'object' &&
        node.connection.connectionId !== undefined,
    )
  )
}

/**
 * A vault error as a `config` ProviderError with a message for a person: which variable or
 * file to fix. Vault messages never contain key material or plaintext, and neither do these.
 */
export function storeError(error: unknown, path?: string, id?: string): unknown {
  if (!VaultError.isInstance(error)) return error
  const which = id ? `connection ${id}` : (path ?? 'the local connection store')
  let message: string
  switch (error.kind) {
    case 'integrity':
      message = `${which}: the stored credentials cannot be decrypted: its provider or destination params (host, port...) were changed in ${path ?? 'the store file'} (they are bound to the credentials; put them back, or remove the connection and add it again), the entry was modified, or the master key (${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV}) is not the one they were sealed with`
      break
    case 'format':
      message = error.field === 'id' ? `${error.message} (store ${path})` : error.message
      break
    case 'key':
      message =
        error.field === 'keyring'
          ? `${which}: ${error.message}; set the master key generation it was sealed with in NVISY_MASTER_KEYS_PREVIOUS`
          : error.message
      break
    case 'not_found':
      message = id ? `no connection ${id} in the local store ${path}` : error.message
      break
    default:
      message = error.message
  }
  return new ProviderError({
    kind: error.kind === 'not_found' ? 'not_found' : 'config',
    message,
    cause: error,
  })
}

// `--credentials-env` lives in credentials-env.ts; re-exported for existing importers.
export { credentialsFromEnv, envNameOf } from './credentials-env.js'
