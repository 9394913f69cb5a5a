import { ProviderError } from '@nvisy/provider-core'

/** Node's file-system error codes, grouped by what the runtime should do about them. */
const NOT_FOUND = new Set(['ENOENT'])
const DENIED = new Set(['EACCES', 'EPERM'])
const TRANSIENT = new Set([
  'EMFILE',
  'ENFILE',
  'EBUSY',
  'EAGAIN',
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'ETIMEDOUT',
  'ESTALE',
])
const CONFIG = new Set(['EROFS', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EXDEV'])
const DATA = new Set(['EISDIR', 'EEXIST', 'ENOTEMPTY', 'EILSEQ', 'EINVAL'])

/** Map a raw `node:fs` error to a classified ProviderError, or undefined when it is not one. */
export function classifyFsError(error: unknown): ProviderError | undefined {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  const message = (error as Error).message ?? code
  const kind = NOT_FOUND.has(code)
    ? 'not_found'
    : DENIED.has(code)
      ? 'auth'
      : TRANSIENT.has(code)
        ? 'transient'
        : CONFIG.has(code)
          ? 'config'
          : DATA.has(code)
            ? 'data'
            : undefined
  if (kind === undefined) return undefined
  return new ProviderError({ kind, message, code, cause: error })
}

/** A settings error that names the field path and the rule, like schema validation does. */
export function configError(path: string, rule: string, message: string): ProviderError {
  return new ProviderError({
    kind: 'config',
    message: `invalid fs stream settings: ${path} ${message} (${rule})`,
    issues: [{ path, rule, message }],
  })
}

export function dataError(message: string, cause?: unknown): ProviderError {
  return new ProviderError({ kind: 'data', message, cause })
}
