import { type ErrorKind, isTransientNetworkError, ProviderError } from '@nvisy/provider-core'

interface PgErrorFields {
  code?: unknown
  message?: unknown
  schema?: unknown
  table?: unknown
  column?: unknown
  constraint?: unknown
  detail?: unknown
}

/** SQLSTATE classes and codes, as listed in PostgreSQL's errcodes appendix. */
const AUTH_CODES = new Set(['28000', '28P01', '42501'])
const TRANSIENT_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '55P03', // lock_not_available
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '58000', // system_error
  '58030', // io_error
])
const NOT_FOUND_CODES = new Set(['42P01', '3F000', '42704'])
const CONFIG_CODES = new Set([
  '3D000',
  '42703',
  '42P10',
  '42601',
  '42883',
  '0A000',
  '22023',
  '42P02',
])

/** The error kind of a SQLSTATE, or undefined when it is not one we know. */
export function kindOfSqlState(code: string): ErrorKind | undefined {
  if (AUTH_CODES.has(code)) return 'auth'
  if (TRANSIENT_CODES.has(code)) return 'transient'
  if (NOT_FOUND_CODES.has(code)) return 'not_found'
  if (CONFIG_CODES.has(code)) return 'config'
  const sqlClass = code.slice(0, 2)
  if (sqlClass === '08' || sqlClass === '53') return 'transient' // connection exception, insufficient resources
  if (sqlClass === '21' || sqlClass === '22' || sqlClass === '23') return 'data'
  if (sqlClass === '42') return 'config'
  return undefined
}

/** True when the server answered with a SQLSTATE: the connection itself is still usable. */
export function hasSqlState(error: unknown): boolean {
  const code = (error as PgErrorFields | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P)/.test(code)
}

/** True for errors that concern one row's values: the sink reports them per row. */
export function isRowDataError(error: unknown): boolean {
  const code = (error as PgErrorFields | null)?.code
  return typeof code === 'string' && /^\d[0-9A-Z]{4}$/.test(code) && kindOfSqlState(code) === 'data'
}

const TLS_CONFIG_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

function describe(fields: PgErrorFields, message: string): string {
  const where: string[] = []
  if (typeof fields.table === 'string') {
    where.push(
      `table ${typeof fields.schema === 'string' ? `${fields.schema}.` : ''}${fields.table}`,
    )
  }
  if (typeof fields.column === 'string') where.push(`column ${fields.column}`)
  if (typeof fields.constraint === 'string') where.push(`constraint ${fields.constraint}`)
  return where.length > 0 ? `${message} (${where.join(', ')})` : message
}

/**
 * Map a node-postgres error to a ProviderError: SQLSTATE first, then Node's socket and TLS
 * codes, then the messages pg raises itself when a connection drops.
 */
export function classifyPostgresError(error: unknown): ProviderError | undefined {
  if (ProviderError.isInstance(error)) return error
  if (typeof error !== 'object' || error === null) return undefined
  const fields = error as PgErrorFields
  const message = typeof fields.message === 'string' ? fields.message : String(error)
  const code = typeof fields.code === 'string' ? fields.code : undefined
  let kind: ErrorKind | undefined
  if (code && /^[0-9A-Z]{5}$/.test(code)) kind = kindOfSqlState(code)
  if (!kind && code) {
    if (isTransientNetworkError(error)) kind = 'transient'
    else if (code === 'ENOTFOUND') kind = 'config'
    else if (TLS_CONFIG_CODES.has(code)) kind = 'config'
  }
  if (!kind) {
    if (
      /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(
        message,
      )
    ) {
      kind = 'transient'
    } else if (
      /does not support SSL|SSL is not enabled|self[- ]signed certificate|certificate/i.test(
        message,
      )
    ) {
      kind = 'config'
    }
  }
  if (!kind) return undefined
  return new ProviderError({ kind, message: describe(fields, message), code, cause: error })
}
