import { resolve } from 'node:path'
import { type Provider, ProviderError } from '@nvisy/provider-core'
import type { JsonObject } from '@nvisy/vault'
import { credentialsFromEnv, describeAlternatives } from '../credentials-env.js'
import { parseJsonText } from '../json-text.js'
import { type CliIo, FileSyntaxError, readJson, UsageError } from './shared.js'

// The connection input check, discover and connections add read: --params and --credentials-env.

/** `--credentials-env PREFIX`: the credentials from variables; none of them set is a usage error. */
export function readCredentialsEnv(
  provider: Provider,
  prefix: string,
  env: NodeJS.ProcessEnv,
): { credentials: Record<string, unknown>; variables: Record<string, string>; prefix: string } {
  const fromEnv = credentialsFromEnv(provider, prefix, env)
  const names = Object.values(fromEnv.variables)
  if (fromEnv.read.length === 0 && names.length > 0) {
    throw new UsageError(
      `--credentials-env ${prefix}: none of ${names.join(', ')} is set (the ${provider.id} credentials schema's fields, see nvisy providers)`,
    )
  }
  return { ...fromEnv, prefix }
}

/**
 * `provider.validateInput`, with each credentials issue naming the variable its field came
 * from when the credentials came from `--credentials-env` (never a value).
 */
export function validateWithVariables(
  provider: Provider,
  input: { params: unknown; credentials: unknown },
  fromEnv: { prefix: string; variables: Record<string, string> } | undefined,
): void {
  try {
    provider.validateInput(input)
  } catch (error) {
    if (!ProviderError.isInstance(error) || !error.issues || !fromEnv) throw error
    const { prefix, variables } = fromEnv
    const hinted = error.issues.map((i) => {
      if (i.path === '/credentials' && (i.rule === 'anyOf' || i.rule === 'oneOf')) {
        const alternatives = describeAlternatives(provider.definition.credentials, prefix)
        return alternatives
          ? { ...i, message: `${i.message}: set the variables of one of ${alternatives}` }
          : i
      }
      const pointer = /^\/credentials(\/.+)$/.exec(i.path)?.[1]
      const variable = pointer === undefined ? undefined : variables[pointer]
      return variable ? { ...i, message: `${i.message} (from ${variable})` } : i
    })
    throw new ProviderError({
      kind: 'config',
      message: `invalid ${provider.id} connection: ${hinted.map((i) => `${i.path} ${i.message} (${i.rule})`).join('; ')}`,
      issues: hinted,
    })
  }
}

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** `--params`: inline JSON when it starts with `{`, else a JSON file. */
export async function readParamsArgument(
  value: string | undefined,
  io: CliIo,
): Promise<JsonObject> {
  if (value === undefined) return {}
  let parsed: unknown
  if (value.trimStart().startsWith('{')) {
    try {
      parsed = parseJsonText(value, '--params')
    } catch (error) {
      throw new FileSyntaxError(`${(error as Error).message} (--params is not valid JSON)`)
    }
  } else {
    parsed = await readJson(resolve(io.cwd, value), 'params file', io.cwd)
  }
  if (!isJsonObject(parsed)) throw new UsageError('--params must be a JSON object')
  return parsed
}
