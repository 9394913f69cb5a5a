import {
  type ErrorKind,
  errorMessage,
  isTransientNetworkError,
  ProviderError,
} from '@nvisy/provider-core'

/**
 * Server error codes and the kind each maps to.
 *
 * - `auth`: AuthenticationFailed (18), Unauthorized (13): new credentials or grants fix it.
 * - `data`: DuplicateKey (11000, 11001), DocumentValidationFailure (121), ImmutableField (66),
 *   BadValue/InvalidIdField for a document (2, 53), a document too large (10334, 17419):
 *   the item itself is wrong, the rest of the batch is not.
 * - `transient`: a primary stepping down or gone (NotWritablePrimary 10107, NotPrimaryNoSecondaryOk
 *   13435, NotPrimaryOrSecondary 13436, PrimarySteppedDown 189, InterruptedDueToReplStateChange 11602),
 *   shutdown (91, 11600), network-level codes (6, 7, 89, 9001), time limits (50, 262),
 *   write concern failures (64, 100), and any error labelled RetryableWriteError or TransientTransactionError.
 * - `rate_limited`: RequestRateTooLarge (16500, Cosmos DB's MongoDB API).
 * - `not_found`: NamespaceNotFound (26).
 * - `config`: a query the server cannot parse (2, 9, 14 outside a write) and unknown commands (59).
 */
const CODE_KINDS: Record<number, ErrorKind> = {
  18: 'auth',
  13: 'auth',
  11000: 'data',
  11001: 'data',
  12582: 'data',
  121: 'data',
  66: 'data',
  53: 'data',
  10334: 'data',
  17419: 'data',
  6: 'transient',
  7: 'transient',
  50: 'transient',
  64: 'transient',
  89: 'transient',
  91: 'transient',
  100: 'transient',
  189: 'transient',
  262: 'transient',
  9001: 'transient',
  10107: 'transient',
  11600: 'transient',
  11602: 'transient',
  13435: 'transient',
  13436: 'transient',
  16500: 'rate_limited',
  26: 'not_found',
  2: 'config',
  9: 'config',
  14: 'config',
  59: 'config',
}

/** Write error codes that belong to one document: they go to `failed`, the batch goes on. */
export const DOCUMENT_ERROR_CODES = new Set([
  11000, 11001, 12582, 121, 66, 53, 2, 10334, 17419, 52, 55,
])

const TRANSIENT_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  'MongoWaitQueueTimeoutError',
  'MongoOperationTimeoutError',
  'PoolClosedError',
  'MongoServerClosedError',
])

const CONFIG_NAMES = new Set([
  'MongoParseError',
  'MongoInvalidArgumentError',
  'MongoAPIError',
  'MongoMissingCredentialsError',
  'MongoCompatibilityError',
])

interface DriverError {
  name?: string
  code?: unknown
  codeName?: unknown
  message?: string
  hasErrorLabel?: (label: string) => boolean
}

function labelled(error: DriverError, label: string): boolean {
  try {
    return typeof error.hasErrorLabel === 'function' && error.hasErrorLabel(label)
  } catch {
    return false
  }
}

/** A short message naming the failure; it never repeats a connection string. */
function describe(error: DriverError, kind: ErrorKind): string {
  if (error.name === 'MongoParseError')
    return 'MongoDB: the connection string or its options are invalid (the string is not repeated here because it may hold a password)'
  const code =
    typeof error.code === 'number'
      ? ` (code ${error.code}${typeof error.codeName === 'string' ? ` ${error.codeName}` : ''})`
      : ''
  const text = errorMessage(error).replace(/mongodb(\+srv)?:\/\/[^\s'"]*/g, 'mongodb://…')
  if (kind === 'auth' && error.code === 18) return `MongoDB refused the credentials${code}: ${text}`
  return `MongoDB: ${text}${code}`
}

/** Map a driver error to a ProviderError; undefined when it is not a MongoDB driver error. */
export function classifyMongoError(raw: unknown): ProviderError | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const error = raw as DriverError
  const name = typeof error.name === 'string' ? error.name : ''
  let kind: ErrorKind | undefined
  if (typeof error.code === 'number' && CODE_KINDS[error.code]) kind = CODE_KINDS[error.code]
  if (kind === undefined || kind === 'config') {
    if (
      labelled(error, 'RetryableWriteError') ||
      labelled(error, 'TransientTransactionError') ||
      labelled(error, 'ResetPool')
    ) {
      kind = 'transient'
    }
  }
  if (kind === undefined) {
    if (TRANSIENT_NAMES.has(name) || isTransientNetworkError(error)) kind = 'transient'
    else if (CONFIG_NAMES.has(name)) kind = 'config'
    else if (name.startsWith('Mongo') || name === 'BSONError')
      kind = name === 'BSONError' ? 'data' : 'internal'
  }
  if (kind === undefined) return undefined
  return new ProviderError({
    kind,
    message: describe(error, kind),
    code:
      typeof error.code === 'number'
        ? String(error.code)
        : typeof error.code === 'string'
          ? error.code
          : undefined,
    cause: raw,
  })
}
