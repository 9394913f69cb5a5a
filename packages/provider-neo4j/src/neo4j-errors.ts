import { type ErrorKind, errorMessage, ProviderError } from '@nvisy/provider-core'

const AUTH_CODES = new Set([
  'Neo.ClientError.Security.Unauthorized',
  'Neo.ClientError.Security.TokenExpired',
  'Neo.ClientError.Security.CredentialsExpired',
  'Neo.ClientError.Security.Forbidden',
  'Neo.ClientError.Security.AuthorizationExpired',
])

const DATA_CODES = new Set([
  'Neo.ClientError.Schema.ConstraintValidationFailed',
  'Neo.ClientError.Statement.TypeError',
  'Neo.ClientError.Statement.SemanticError',
  'Neo.ClientError.Statement.ArgumentError',
  'Neo.ClientError.Statement.ArithmeticError',
  'Neo.ClientError.Statement.EntityNotFound',
])

/** The kind a Neo4j status code (or a driver error code) stands for. */
export function kindOfCode(code: string): ErrorKind | undefined {
  if (AUTH_CODES.has(code)) return 'auth'
  if (code === 'Neo.ClientError.Security.AuthenticationRateLimit') return 'rate_limited'
  if (code === 'ServiceUnavailable' || code === 'SessionExpired') return 'transient'
  if (code.startsWith('Neo.TransientError.')) return 'transient'
  if (
    code === 'Neo.ClientError.Cluster.NotALeader' ||
    code === 'Neo.ClientError.General.ForbiddenOnReadOnlyDatabase'
  ) {
    return 'transient'
  }
  if (code === 'Neo.ClientError.Database.DatabaseNotFound') return 'not_found'
  if (DATA_CODES.has(code)) return 'data'
  if (code === 'Neo.ClientError.Statement.AccessMode') return 'config'
  if (code.startsWith('Neo.ClientError.Security.')) return 'auth'
  if (code.startsWith('Neo.DatabaseError.')) return 'internal'
  return undefined
}

/** Map a neo4j-driver error (Neo4jError with `.code`) to a ProviderError. */
export function classifyNeo4jError(error: unknown): ProviderError | undefined {
  if (ProviderError.isInstance(error)) return error
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  const kind = kindOfCode(code)
  if (!kind) return undefined
  return new ProviderError({ kind, code, message: `neo4j: ${errorMessage(error)}`, cause: error })
}
