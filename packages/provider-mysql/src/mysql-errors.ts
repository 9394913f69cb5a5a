import { type ErrorKind, ProviderError } from '@nvisy/provider-core'

/** Server error numbers by the kind they mean. */
const AUTH_ERRNOS = new Set([
  1044, // ER_DBACCESS_DENIED_ERROR
  1045, // ER_ACCESS_DENIED_ERROR
  1142, // ER_TABLEACCESS_DENIED_ERROR
  1143, // ER_COLUMNACCESS_DENIED_ERROR
  1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR
  1251, // ER_NOT_SUPPORTED_AUTH_MODE
  1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  1862, // ER_MUST_CHANGE_PASSWORD_LOGIN
  4151, // ER_ACCOUNT_HAS_BEEN_LOCKED (MySQL) / MariaDB account locked
])

const NOT_FOUND_ERRNOS = new Set([
  1049, // ER_BAD_DB_ERROR
  1146, // ER_NO_SUCH_TABLE
])

const CONFIG_ERRNOS = new Set([
  1054, // ER_BAD_FIELD_ERROR (unknown column in settings)
  1064, // ER_PARSE_ERROR
  1109, // ER_UNKNOWN_TABLE
  1046, // ER_NO_DB_ERROR
  1102, // ER_WRONG_DB_NAME
  1103, // ER_WRONG_TABLE_NAME
  1166, // ER_WRONG_COLUMN_NAME
  1290, // ER_OPTION_PREVENTS_STATEMENT (read-only server)
  1836, // ER_READ_ONLY_MODE
])

const TRANSIENT_ERRNOS = new Set([
  1040, // ER_CON_COUNT_ERROR (too many connections)
  1053, // ER_SERVER_SHUTDOWN
  1077, // ER_NORMAL_SHUTDOWN
  1152, // ER_ABORTING_CONNECTION
  1158,
  1159,
  1160,
  1161, // network read/write errors and timeouts
  1203, // ER_TOO_MANY_USER_CONNECTIONS
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  1226, // ER_USER_LIMIT_REACHED
  1317, // ER_QUERY_INTERRUPTED
  1927, // ER_CONNECTION_KILLED (MariaDB)
  1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  2002,
  2003,
  2006,
  2013,
  2055, // client: cannot connect, server gone, lost connection
  3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
  3572, // ER_LOCK_NOWAIT
  4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
])

/** Errors about one row's values: reported for that row, the rest of the batch is written. */
const DATA_ERRNOS = new Set([
  1048, // ER_BAD_NULL_ERROR
  1062, // ER_DUP_ENTRY
  1169, // ER_DUP_UNIQUE
  1216,
  1217,
  1451,
  1452, // foreign key violations
  1263, // ER_WARN_NULL_TO_NOTNULL
  1264, // ER_WARN_DATA_OUT_OF_RANGE
  1265, // WARN_DATA_TRUNCATED
  1292, // ER_TRUNCATED_WRONG_VALUE (bad date, bad number)
  1364, // ER_NO_DEFAULT_FOR_FIELD
  1365, // ER_DIVISION_BY_ZERO
  1366, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
  1367, // ER_ILLEGAL_VALUE_FOR_TYPE
  1406, // ER_DATA_TOO_LONG
  1411, // ER_WRONG_VALUE_FOR_TYPE
  1416, // ER_CANT_CREATE_GEOMETRY_OBJECT
  1586, // ER_DUP_ENTRY_WITH_KEY_NAME
  1690, // ER_DATA_OUT_OF_RANGE
  3140, // ER_INVALID_JSON_TEXT (MySQL)
  3156, // ER_INVALID_JSON_VALUE_FOR_CAST
  3819, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
  4025, // ER_CONSTRAINT_FAILED (MariaDB CHECK, incl. json_valid)
  4078, // ER_ILLEGAL_PARAMETER_DATA_TYPES2_FOR_OPERATION (MariaDB)
])

const TRANSIENT_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'POOL_CLOSED',
])

const CONFIG_CODES = new Set(['ENOTFOUND', 'HANDSHAKE_NO_SSL_SUPPORT', 'HANDSHAKE_SSL_ERROR'])

export interface MysqlDriverError {
  message?: string
  code?: string
  errno?: number
  sqlState?: string
  sqlMessage?: string
  fatal?: boolean
}

function isDriverError(error: unknown): error is MysqlDriverError {
  return (
    typeof error === 'object' &&
    error !== null &&
    ('errno' in error || 'code' in error || 'sqlState' in error)
  )
}

/** The error kind a mysql2 error means, or undefined when it is not one we know. */
export function mysqlErrorKind(error: unknown): ErrorKind | undefined {
  if (!isDriverError(error)) return undefined
  const errno = typeof error.errno === 'number' ? error.errno : undefined
  const code = typeof error.code === 'string' ? error.code : undefined
  if (errno !== undefined) {
    if (AUTH_ERRNOS.has(errno)) return 'auth'
    if (NOT_FOUND_ERRNOS.has(errno)) return 'not_found'
    if (CONFIG_ERRNOS.has(errno)) return 'config'
    if (TRANSIENT_ERRNOS.has(errno)) return 'transient'
    if (DATA_ERRNOS.has(errno)) return 'data'
  }
  if (code !== undefined) {
    if (TRANSIENT_CODES.has(code)) return 'transient'
    if (CONFIG_CODES.has(code)) return 'config'
    if (
      /^(ERR_TLS_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT|UNABLE_TO_(GET|VERIFY)|CERT_)/.test(
        code,
      )
    )
      return 'config'
  }
  // SQLSTATE class 22 (data exception) and 23 (integrity constraint violation) are row errors.
  const state = error.sqlState
  if (typeof state === 'string') {
    if (state.startsWith('22') || state.startsWith('23')) return 'data'
    if (state.startsWith('28')) return 'auth'
    if (state === '40001' || state.startsWith('08')) return 'transient'
    if (state === '42S02') return 'not_found'
    if (state.startsWith('42')) return 'config'
  }
  return undefined
}

/**
 * Where the server's messages quote a value, with what replaces it: the value is left out and
 * the rest (the rule, the column, the key, the row number) kept. A value may be personal or
 * secret data. The patterns are greedy: a value that itself holds the text after it still
 * ends at the message's last occurrence of that text.
 */
const QUOTED_VALUES: [RegExp, string][] = [
  // 1062, 1586: Duplicate entry '<value>' for key '<key>'
  [/Duplicate entry '[\s\S]*' for key /, 'Duplicate entry for key '],
  // 1292, 1366, 1411: Incorrect <type> value: '<value>' for column <column> at row <n>, or
  // ... for function <name>; Truncated incorrect <type> value: '<value>'
  [/ value: '[\s\S]*'(?= for column | for function |$)/, ' value'],
  // 1367: Illegal <type> '<value>' value found during parsing
  [/Illegal (\S+) '[\s\S]*' value found/, 'Illegal $1 value found'],
  // 1690: <TYPE> value is out of range in '<expression with its values>'
  [/ is out of range in '[\s\S]*'$/, ' is out of range'],
  // 1064: ... the right syntax to use near '<statement text>' at line <n>
  [/ near '[\s\S]*' at line (\d+)$/, ' near line $1'],
]

/** A server or driver message without the values it quotes (see QUOTED_VALUES). */
function withoutValues(message: string): string {
  let text = message
  for (const [pattern, replacement] of QUOTED_VALUES) text = text.replace(pattern, replacement)
  return text
}

/**
 * A copy of a driver error without the values it carries: mysql2 keeps the statement it ran
 * (`sql`: every row of a multi-row INSERT) and the server's message, which may quote a value.
 * The copy keeps what classifies and locates the error: code, errno, SQLSTATE, fatal and the
 * stack's frames.
 */
function withoutValuesError(error: MysqlDriverError & object): Error {
  const message = withoutValues(driverText(error))
  const copy = new Error(message)
  copy.name = error instanceof Error ? error.name : 'Error'
  const fields: Record<string, unknown> = {}
  if (error.code !== undefined) fields.code = error.code
  if (error.errno !== undefined) fields.errno = error.errno
  if (error.sqlState !== undefined) fields.sqlState = error.sqlState
  if (error.sqlMessage !== undefined) fields.sqlMessage = withoutValues(String(error.sqlMessage))
  if (error.fatal !== undefined) fields.fatal = error.fatal
  Object.assign(copy, fields)
  const stack = error instanceof Error ? error.stack : undefined
  const frames = stack?.indexOf('\n    at ') ?? -1
  copy.stack = `${copy.name}: ${message}${frames >= 0 ? stack!.slice(frames) : ''}`
  return copy
}

function driverText(error: MysqlDriverError): string {
  return error.sqlMessage ?? error.message ?? 'MySQL error'
}

/**
 * Classify a raw mysql2 error; the core falls back to its own rules when this returns
 * undefined. The message and the cause are the driver's without the values it carries.
 */
export function classifyMysqlError(error: unknown): ProviderError | undefined {
  const kind = mysqlErrorKind(error)
  if (!kind) return undefined
  const driver = error as MysqlDriverError & object
  const code = driver.code ?? (driver.errno !== undefined ? String(driver.errno) : undefined)
  const detail = withoutValues(driverText(driver))
  const errnoText =
    driver.errno !== undefined
      ? ` (${driver.code ?? 'errno'} ${driver.errno})`
      : driver.code
        ? ` (${driver.code})`
        : ''
  return new ProviderError({
    kind,
    message: `${detail}${errnoText}`,
    code,
    cause: withoutValuesError(driver),
  })
}

/** Shorthand for errors this package raises itself. */
export function mysqlError(
  kind: ErrorKind,
  message: string,
  extra: { cause?: unknown; code?: string } = {},
): ProviderError {
  return new ProviderError({ kind, message, providerId: 'mysql', ...extra })
}
