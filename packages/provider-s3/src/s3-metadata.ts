// S3 user metadata travels in HTTP headers, which only carry US-ASCII. Non-ASCII values
// are sent as RFC 2047 encoded words (`=?UTF-8?B?<base64>?=`), the form S3 itself uses
// for such values, and decoded again on read.

const ENCODED_WORD = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/i
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

export function encodeMetadataValue(value: string): string {
  if (PRINTABLE_ASCII.test(value) && !ENCODED_WORD.test(value)) return value
  return `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`
}

export function decodeMetadataValue(value: string): string {
  const match = ENCODED_WORD.exec(value)
  return match ? Buffer.from(match[1]!, 'base64').toString('utf8') : value
}

/** Metadata names are case-insensitive header suffixes: lower-case letters, digits, `-`, `_`, `.`. */
export function metadataKeyProblem(key: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(key)) {
    return `metadata name ${JSON.stringify(key)} must be letters, digits, '.', '_' or '-'`
  }
  return undefined
}

export function encodeMetadata(
  metadata: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!metadata) return undefined
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(metadata))
    out[key.toLowerCase()] = encodeMetadataValue(value)
  return out
}

export function decodeMetadata(
  metadata: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!metadata) return undefined
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(metadata)) out[key] = decodeMetadataValue(value)
  return out
}
