// Strict duplicate detection, as Elasticsearch and OpenSearch parse JSON: their Jackson
// parser runs with STRICT_DUPLICATE_DETECTION, so an object that names a key twice (equal
// values included, at any depth) is refused while it is read, "Duplicate field 'x'", at the
// byte just after the repeated name.

/** Where Jackson reports a place: 1-based line, and 1-based column in bytes of UTF-8. */
export interface JsonPlace {
  line: number
  column: number
}

export interface DuplicateKey {
  /** The repeated key, decoded. */
  key: string
  /** Just after the repeated name's closing quote (the parser's current location). */
  at: JsonPlace
  /** The start of the last token read before the name (the parser's token location). */
  token: JsonPlace
}

/**
 * Jackson's text for a place in a request body. Jackson 2.16+ (Elasticsearch 8.15, OpenSearch
 * 2.17) leaves the source out unless StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION is on.
 */
export function jacksonLocation(place: JsonPlace): string {
  return `[Source: REDACTED (\`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION\` disabled); line: ${place.line}, column: ${place.column}]`
}

/** Jackson's message for a repeated key: "Duplicate field 'x'" and where. */
export function duplicateFieldMessage(duplicate: DuplicateKey): string {
  return `Duplicate field '${duplicate.key}'\n at ${jacksonLocation(duplicate.at)}`
}

function countMembers(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0
  let count = 0
  if (Array.isArray(value)) {
    for (const item of value) count += countMembers(item)
    return count
  }
  for (const key of Object.keys(value)) {
    count += 1 + countMembers((value as Record<string, unknown>)[key])
  }
  return count
}

function countColons(text: string): number {
  let count = 0
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) count++
  return count
}

/** The index just after the closing quote of the string that starts at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x5c /* \ */) i += 2
    else if (c === 0x22 /* " */) return i + 1
    else i++
  }
  return text.length
}

function isValueEnd(c: number): boolean {
  // What ends a number, true, false or null: a delimiter or whitespace.
  return (
    c === 0x2c ||
    c === 0x7d ||
    c === 0x5d ||
    c === 0x3a ||
    c === 0x20 ||
    c === 0x09 ||
    c === 0x0a ||
    c === 0x0d
  )
}

/**
 * The first key an object repeats in `text`, JSON that `JSON.parse` accepted as `parsed`, or
 * undefined. Cheap when there is none: every member has one ':' outside strings, so when the
 * text has no more ':' than the parsed value has members, no member was collapsed; only
 * otherwise is the text walked.
 */
export function findDuplicateKey(text: string, parsed: unknown): DuplicateKey | undefined {
  if (countColons(text) <= countMembers(parsed)) return undefined
  const places = new Places(text)
  // One entry per open container: the keys seen, or null for an array.
  const open: (Set<string> | null)[] = []
  let expectKey = false
  let tokenStart = 0
  let i = 0
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x7b /* { */) {
      open.push(new Set())
      tokenStart = i
      expectKey = true
      i++
    } else if (c === 0x5b /* [ */) {
      open.push(null)
      tokenStart = i
      expectKey = false
      i++
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop()
      tokenStart = i
      expectKey = false
      i++
    } else if (c === 0x2c /* , */) {
      expectKey = open.at(-1) instanceof Set
      i++
    } else if (c === 0x22 /* " */) {
      const end = stringEnd(text, i)
      if (expectKey) {
        const key = JSON.parse(text.slice(i, end)) as string
        const keys = open.at(-1) as Set<string>
        if (keys.has(key)) {
          const token = places.at(tokenStart)
          return { key, at: places.at(end), token }
        }
        keys.add(key)
        expectKey = false
      } else tokenStart = i
      i = end
    } else if (c === 0x3a /* : */ || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++
    } else {
      tokenStart = i
      while (i < text.length && !isValueEnd(text.charCodeAt(i))) i++
    }
  }
  return undefined
}

/** 1-based line and byte column of string indexes, counted forward as the walk goes. */
class Places {
  private index = 0
  private line = 1
  private lineStartByte = 0
  private byte = 0
  constructor(private readonly text: string) {}

  at(target: number): JsonPlace {
    // Counted on from the last place asked; an earlier place counts again from the start.
    if (target < this.index) {
      this.index = 0
      this.line = 1
      this.lineStartByte = 0
      this.byte = 0
    }
    while (this.index < target) {
      const c = this.text.charCodeAt(this.index)
      if (c === 0x0a) {
        this.line++
        this.byte++
        this.lineStartByte = this.byte
      } else if (c < 0x80) this.byte++
      else if (c < 0x800) this.byte += 2
      else if (c >= 0xd800 && c <= 0xdbff) {
        // A surrogate pair is one 4-byte character.
        this.byte += 4
        this.index++
      } else this.byte += 3
      this.index++
    }
    return { line: this.line, column: this.byte - this.lineStartByte + 1 }
  }
}
