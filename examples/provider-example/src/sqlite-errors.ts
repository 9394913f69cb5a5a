import { type ErrorKind, errorMessage, ProviderError } from '@nvisy/provider-core'

/** The SQLite result code of a driver error (`SQLITE_CONSTRAINT_UNIQUE`...), when it has one. */
export function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined
}

/**
 * The kind of a SQLite error. Extended result codes (`SQLITE_BUSY_SNAPSHOT`) are classified
 * by their primary code (`SQLITE_BUSY`); plain `SQLITE_ERROR` by its message.
 */
export function kindOfSqliteError(code: string, message: string): ErrorKind {
  const primary = code.split('_').slice(0, 2).join('_')
  switch (primary) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
    case 'SQLITE_INTERRUPT':
    case 'SQLITE_PROTOCOL':
      return 'transient'
    case 'SQLITE_CONSTRAINT':
    case 'SQLITE_MISMATCH':
    case 'SQLITE_TOOBIG':
    case 'SQLITE_RANGE':
      return 'data'
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_READONLY':
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
    case 'SQLITE_AUTH':
    case 'SQLITE_PERM':
      return 'config'
    case 'SQLITE_ERROR':
      if (/^no such table\b/i.test(message)) return 'not_found'
      // no such column, syntax errors, ON CONFLICT without a matching UNIQUE constraint...
      return 'config'
    default:
      return 'internal'
  }
}

/** `classifyError` of the provider: better-sqlite3's SqliteError by its result code. */
export function classifySqliteError(error: unknown): ProviderError | undefined {
  const code = sqliteCode(error)
  if (code === undefined) return undefined
  const message = errorMessage(error)
  return new ProviderError({
    kind: kindOfSqliteError(code, message),
    message: `sqlite: ${message} (${code})`,
    code,
    cause: error,
  })
}

/** Binding errors better-sqlite3 throws before SQLite sees the value (a bigint out of range...). */
export function isBindError(error: unknown): boolean {
  return (
    (error instanceof RangeError || error instanceof TypeError) && sqliteCode(error) === undefined
  )
}
