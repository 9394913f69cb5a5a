import { randomBytes } from 'node:crypto'
import { isAbsolute, relative, sep } from 'node:path'

/**
 * Byte-wise order of UTF-8 keys (the order S3 lists in). JavaScript's `<` compares UTF-16
 * code units, which puts U+10000 and above before U+E000..U+FFFF; UTF-8 bytes do not.
 */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

const SIDECAR_SUFFIX = '.nvisy-meta.json'
const SIDECAR_PATTERN = /^\..+\.nvisy-meta\.json$/s
const TEMP_PATTERN = /^\..*\.nvisy-[0-9a-f]{16}\.tmp$/s

/** The hidden file next to a blob that keeps its content type and metadata. */
export function sidecarName(name: string): string {
  return `.${name}${SIDECAR_SUFFIX}`
}

/** A temporary file in the blob's own directory, renamed over the blob once complete. */
export function tempName(name: string): string {
  // Keep the name short enough for NAME_MAX (255 bytes) whatever the blob's name is.
  const stem = Buffer.from(name, 'utf8').subarray(0, 96).toString('utf8')
  return `.${stem}.nvisy-${randomBytes(8).toString('hex')}.tmp`
}

/** A temporary file of this provider's blob writes (`.<name>.nvisy-<16 hex>.tmp`). */
export function isTempName(name: string): boolean {
  return TEMP_PATTERN.test(name)
}

/** Sidecars and temporary files this provider writes: never read as blobs, never writable keys. */
export function isReservedName(name: string): boolean {
  return SIDECAR_PATTERN.test(name) || TEMP_PATTERN.test(name)
}

/** True when `path` is `root` or inside it. Both must be real (symlink-free) absolute paths. */
export function isWithin(root: string, path: string): boolean {
  if (path === root) return true
  const rel = relative(root, path)
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel)
}

/**
 * Why a blob key cannot be stored under the root, or undefined when it can. Keys are
 * '/'-separated relative paths: no leading '/', no empty, '.' or '..' segment, no NUL.
 */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'is empty'
  if (key.includes('\0')) return 'contains a NUL character'
  if (key.startsWith('/')) return 'is absolute (starts with "/")'
  if (sep === '\\' && /[\\:]/.test(key))
    return 'contains "\\" or ":", which are not allowed on Windows'
  const segments = key.split('/')
  for (const segment of segments) {
    if (segment === '') return 'has an empty path segment ("//" or a trailing "/")'
    if (segment === '.' || segment === '..')
      return `has a "${segment}" segment, which would leave its folder`
    if (isReservedName(segment))
      return `uses a name reserved for the provider's own files (${segment})`
  }
  return undefined
}

/**
 * Why a relative path from stream settings (a prefix or a file) may not be used, or
 * undefined. Such a path may not be absolute or contain a '..' or '.' segment.
 */
export function relativePathProblem(path: string): string | undefined {
  if (path.includes('\0')) return 'contains a NUL character'
  if (path.startsWith('/') || isAbsolute(path)) return 'must be relative to root, not absolute'
  if (sep === '\\' && path.includes('\\')) return 'must use "/" separators'
  for (const segment of path.split('/')) {
    if (segment === '..' || segment === '.') return `must not contain a "${segment}" segment`
  }
  return undefined
}
