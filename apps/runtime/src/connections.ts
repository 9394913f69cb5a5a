import { ProviderError } from '@nvisy/provider-core'
import type { PipelineNode } from './pipeline-types.js'

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

/**
 * The embedded runtime's `resolveConnection`: plain credentials and params from the pipeline
 * file with environment references resolved. Sealed credentials need the NATS runtime's key.
 */
export function localConnectionResolver(env: NodeJS.ProcessEnv = process.env) {
  return async (node: PipelineNode): Promise<{ credentials: unknown; params: unknown }> => {
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
