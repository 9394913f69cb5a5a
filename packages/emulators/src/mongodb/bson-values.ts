// BSON value helpers for the emulator: type ranks and the server's comparison order, keys
// for the _id and unique indexes, and "views" of documents that mingo can query.
//
// Documents are stored exactly as the driver sent them (deserialized with promoteValues
// off), so Int32, Double, Long and Decimal128 keep their types on the way back. mingo
// only understands JS numbers, so filters and aggregations run on a view where every
// numeric wrapper is a number (a Long beyond 2^53 loses precision there, only there).
import type { Binary, Decimal128, Long, ObjectId, Timestamp } from 'bson'

export type Doc = Record<string, unknown>

function bsonTypeOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined
  return (value as { _bsontype?: string })._bsontype
}

/** The BSON comparison order of a value's type (MongoDB's "type bracket"). */
export function typeRank(value: unknown): number {
  if (value === undefined || value === null) return 2
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return 3
    case 'string':
      return 4
    case 'boolean':
      return 9
  }
  if (Array.isArray(value)) return 6
  if (value instanceof Date) return 10
  if (value instanceof RegExp) return 12
  if (value instanceof Uint8Array) return 7
  switch (bsonTypeOf(value)) {
    case 'MinKey':
      return 1
    case 'Int32':
    case 'Double':
    case 'Long':
    case 'Decimal128':
      return 3
    case 'BSONSymbol':
      return 4
    case 'Binary':
      return 7
    case 'ObjectId':
      return 8
    case 'Timestamp':
      return 11
    case 'BSONRegExp':
      return 12
    case 'MaxKey':
      return 14
    case 'Code':
      return 13
  }
  return 5
}

/** A numeric value as a JS number (Long and Decimal128 approximated). */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'bigint') return Number(value)
  switch (bsonTypeOf(value)) {
    case 'Int32':
    case 'Double':
      return (value as { value: number }).value
    case 'Long':
      return (value as Long).toNumber()
    case 'Decimal128':
      return Number((value as Decimal128).toString())
  }
  return Number.NaN
}

function isLongLike(value: unknown): value is Long | bigint {
  return typeof value === 'bigint' || bsonTypeOf(value) === 'Long'
}

function compareNumbers(a: unknown, b: unknown): number {
  if (isLongLike(a) && isLongLike(b)) {
    const x = typeof a === 'bigint' ? a : (a as Long).toBigInt()
    const y = typeof b === 'bigint' ? b : (b as Long).toBigInt()
    return x < y ? -1 : x > y ? 1 : 0
  }
  const x = toNumber(a)
  const y = toNumber(b)
  if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : -1
  if (Number.isNaN(y)) return 1
  return x < y ? -1 : x > y ? 1 : 0
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1
  return Buffer.compare(a, b)
}

/** MongoDB's order of two BSON values: type rank first, then the value within the type. */
export function compareValues(a: unknown, b: unknown): number {
  const rankA = typeRank(a)
  const rankB = typeRank(b)
  if (rankA !== rankB) return rankA < rankB ? -1 : 1
  switch (rankA) {
    case 1:
    case 2:
    case 14:
      return 0
    case 3:
      return compareNumbers(a, b)
    case 4: {
      const x = String(a)
      const y = String(b)
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 5:
      return compareObjects(a as Doc, b as Doc)
    case 6: {
      const xs = a as unknown[]
      const ys = b as unknown[]
      for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
        const order = compareValues(xs[i], ys[i])
        if (order !== 0) return order
      }
      return xs.length === ys.length ? 0 : xs.length < ys.length ? -1 : 1
    }
    case 7: {
      const x = a instanceof Uint8Array ? a : (a as Binary).buffer
      const y = b instanceof Uint8Array ? b : (b as Binary).buffer
      if (x.length !== y.length) return x.length < y.length ? -1 : 1
      const subA = a instanceof Uint8Array ? 0 : (a as Binary).sub_type
      const subB = b instanceof Uint8Array ? 0 : (b as Binary).sub_type
      if (subA !== subB) return subA < subB ? -1 : 1
      return compareBytes(x, y)
    }
    case 8:
      return Buffer.compare((a as ObjectId).id, (b as ObjectId).id)
    case 9:
      return a === b ? 0 : a ? 1 : -1
    case 10: {
      const x = (a as Date).getTime()
      const y = (b as Date).getTime()
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 11: {
      const x = (a as Timestamp).toBigInt()
      const y = (b as Timestamp).toBigInt()
      return x < y ? -1 : x > y ? 1 : 0
    }
  }
  const x = String(a)
  const y = String(b)
  return x < y ? -1 : x > y ? 1 : 0
}

function compareObjects(a: Doc, b: Doc): number {
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  for (let i = 0; i < Math.min(keysA.length, keysB.length); i++) {
    const ka = keysA[i]!
    const kb = keysB[i]!
    const byType = typeRank(a[ka]) - typeRank(b[kb])
    if (byType !== 0) return byType < 0 ? -1 : 1
    if (ka !== kb) return ka < kb ? -1 : 1
    const order = compareValues(a[ka], b[kb])
    if (order !== 0) return order
  }
  return keysA.length === keysB.length ? 0 : keysA.length < keysB.length ? -1 : 1
}

/**
 * A string that is equal for two values exactly when MongoDB considers them equal for an
 * index: Int32 5, Long 5 and Double 5.0 share a key; ObjectId and its hex string do not.
 */
export function indexKey(value: unknown): string {
  if (value === undefined || value === null) return 'z'
  switch (typeof value) {
    case 'string':
      return `s${value}`
    case 'number':
      return numberKey(value)
    case 'bigint':
      return `n${value}`
    case 'boolean':
      return value ? 'b1' : 'b0'
  }
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(indexKey(v))).join(',')}]`
  if (value instanceof Date) return `t${value.getTime()}`
  if (value instanceof RegExp) return `r${value.source}/${value.flags}`
  if (value instanceof Uint8Array) return `x0:${Buffer.from(value).toString('base64')}`
  switch (bsonTypeOf(value)) {
    case 'ObjectId':
      return `o${(value as ObjectId).toHexString()}`
    case 'Int32':
    case 'Double':
      return numberKey((value as { value: number }).value)
    case 'Long': {
      const big = (value as Long).toBigInt()
      return `n${big}`
    }
    case 'Decimal128': {
      const text = (value as Decimal128).toString()
      const asNumber = Number(text)
      return Number.isFinite(asNumber) && String(asNumber) === text.replace(/\.0+$/, '')
        ? numberKey(asNumber)
        : `d${text}`
    }
    case 'Binary': {
      const binary = value as Binary
      return `x${binary.sub_type}:${Buffer.from(binary.buffer).toString('base64')}`
    }
    case 'Timestamp':
      return `T${(value as Timestamp).toString()}`
    case 'MinKey':
      return 'm-'
    case 'MaxKey':
      return 'm+'
  }
  const doc = value as Doc
  return `{${Object.keys(doc)
    .map((key) => `${JSON.stringify(key)}:${JSON.stringify(indexKey(doc[key]))}`)
    .join(',')}}`
}

function numberKey(value: number): string {
  if (Number.isInteger(value) && Number.isSafeInteger(value)) return `n${value}`
  if (Number.isInteger(value)) return `n${BigInt(value)}`
  return `n${value}`
}

/** A copy of a value that mingo can query: numeric wrappers become JS numbers. */
export function toView(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(toView)
  if (value instanceof Date || value instanceof RegExp || value instanceof Uint8Array) return value
  switch (bsonTypeOf(value)) {
    case 'Int32':
    case 'Double':
    case 'Long':
    case 'Decimal128':
      return toNumber(value)
    case undefined:
      break
    default:
      return value
  }
  const doc = value as Doc
  const view: Doc = {}
  for (const key of Object.keys(doc)) view[key] = toView(doc[key])
  return view
}

/** The value at a dotted path, without traversing arrays (sort keys, index keys). */
export function getPath(doc: unknown, path: string): unknown {
  let current: unknown = doc
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined
    if (Array.isArray(current)) {
      const index = Number(part)
      if (!Number.isInteger(index)) {
        // a.b over an array of documents: the values of b in each element.
        const values = current
          .map((element) => getPath(element, part))
          .filter((v) => v !== undefined)
        current = values.length > 0 ? values : undefined
        continue
      }
      current = current[index]
    } else {
      if (bsonTypeOf(current) !== undefined) return undefined
      current = (current as Doc)[part]
    }
  }
  return current
}

/** The sort key of a value: an array sorts by its smallest (ascending) or largest element. */
function sortKey(value: unknown, direction: number): unknown {
  if (!Array.isArray(value)) return value
  if (value.length === 0) return undefined
  let best = value[0]
  for (const element of value) {
    const order = compareValues(element, best)
    if (direction > 0 ? order < 0 : order > 0) best = element
  }
  return best
}

/** A comparator for a sort specification such as `{ a: 1, _id: -1 }`. */
export function sortComparator(spec: Doc): ((a: Doc, b: Doc) => number) | undefined {
  const keys = Object.keys(spec).map((path) => ({
    path,
    direction: toNumber(spec[path]) < 0 ? -1 : 1,
  }))
  if (keys.length === 0) return undefined
  return (a, b) => {
    for (const { path, direction } of keys) {
      const order = compareValues(
        sortKey(getPath(a, path), direction),
        sortKey(getPath(b, path), direction),
      )
      if (order !== 0) return order * direction
    }
    return 0
  }
}

/** A short text of a value for error messages, in the shell's style. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  switch (bsonTypeOf(value)) {
    case 'ObjectId':
      return `ObjectId('${(value as ObjectId).toHexString()}')`
    case 'Int32':
    case 'Double':
    case 'Long':
    case 'Decimal128':
      return String(toNumber(value))
  }
  if (value instanceof Date) return `new Date(${value.getTime()})`
  if (value === undefined) return 'null'
  if (value !== null && typeof value === 'object') {
    try {
      return JSON.stringify(toView(value))
    } catch {
      return String(value)
    }
  }
  return String(value)
}
