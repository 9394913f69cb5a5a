// Update operators applied to stored documents, keeping BSON types ($inc on an Int32
// stays an Int32 until it overflows into a Long, as on a real server).
import { Double, Int32, Long } from 'bson'
import { compareValues, type Doc, toNumber, typeRank } from './bson-values.js'
import { CommandError, failedToParse, WriteError } from './command-error.js'

const SUPPORTED = new Set([
  '$set',
  '$unset',
  '$inc',
  '$mul',
  '$min',
  '$max',
  '$rename',
  '$setOnInsert',
  '$push',
  '$addToSet',
  '$pull',
  '$currentDate',
])

export function isOperatorUpdate(update: Doc): boolean {
  const keys = Object.keys(update)
  return keys.length > 0 && keys.every((key) => key.startsWith('$'))
}

export function checkUpdate(update: Doc): void {
  const keys = Object.keys(update)
  const operators = keys.filter((key) => key.startsWith('$'))
  if (operators.length > 0 && operators.length !== keys.length) {
    throw failedToParse('The dollar ($) prefixed field in an update must be an operator')
  }
  for (const key of operators) {
    if (!SUPPORTED.has(key)) {
      throw failedToParse(
        `Unknown modifier: ${key}. Expected a valid update modifier or pipeline-style update specified as an array`,
      )
    }
  }
}

/** A shallow copy of the path's containers, so a stored document is never mutated in place. */
function parentFor(
  root: Doc,
  path: string,
  create: boolean,
): { parent: Doc | unknown[]; key: string } | undefined {
  const parts = path.split('.')
  let current: Doc | unknown[] = root
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i]!
    const next: unknown = Array.isArray(current) ? current[Number(part)] : current[part]
    let copy: Doc | unknown[]
    if (next === undefined || next === null) {
      if (!create) return undefined
      copy = {}
    } else if (Array.isArray(next)) {
      copy = [...next]
    } else if (
      typeof next === 'object' &&
      (next as { _bsontype?: string })._bsontype === undefined &&
      !(next instanceof Date)
    ) {
      copy = { ...(next as Doc) }
    } else {
      throw new WriteError(
        28,
        `Cannot create field '${parts[i + 1]}' in element {${part}: ${String(next)}}`,
      )
    }
    if (Array.isArray(current)) current[Number(part)] = copy
    else current[part] = copy
    current = copy
  }
  return { parent: current, key: parts[parts.length - 1]! }
}

function getField(root: Doc, path: string): unknown {
  let current: unknown = root
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined
    current = Array.isArray(current) ? current[Number(part)] : (current as Doc)[part]
  }
  return current
}

function setField(root: Doc, path: string, value: unknown): void {
  const target = parentFor(root, path, true)!
  if (Array.isArray(target.parent)) target.parent[Number(target.key)] = value
  else target.parent[target.key] = value
}

function unsetField(root: Doc, path: string): void {
  const target = parentFor(root, path, false)
  if (!target) return
  if (Array.isArray(target.parent)) target.parent[Number(target.key)] = null
  else delete target.parent[target.key]
}

function isNumeric(value: unknown): boolean {
  return typeRank(value) === 3
}

function kindOf(value: unknown): 'int' | 'long' | 'double' {
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'double'
  const type = (value as { _bsontype?: string })._bsontype
  if (type === 'Int32') return 'int'
  if (type === 'Long' || typeof value === 'bigint') return 'long'
  return 'double'
}

function arithmetic(current: unknown, operand: unknown, op: 'add' | 'mul', path: string): unknown {
  if (!isNumeric(operand)) {
    throw new WriteError(
      14,
      `Cannot ${op === 'add' ? 'increment' : 'multiply'} with non-numeric argument: {${path}: ${String(operand)}}`,
    )
  }
  const base = current === undefined ? (op === 'add' ? new Int32(0) : new Int32(0)) : current
  if (!isNumeric(base)) {
    throw new WriteError(
      14,
      `Cannot apply ${op === 'add' ? '$inc' : '$mul'} to a value of non-numeric type`,
    )
  }
  const kinds = [kindOf(base), kindOf(operand)]
  if (kinds.includes('double')) {
    const x = toNumber(base)
    const y = toNumber(operand)
    return new Double(op === 'add' ? x + y : x * y)
  }
  const x = BigInt(typeof base === 'number' ? base : Long.fromValue(base as Long).toString())
  const yRaw = operand as unknown
  const y =
    typeof yRaw === 'number'
      ? BigInt(yRaw)
      : kindOf(yRaw) === 'int'
        ? BigInt(toNumber(yRaw))
        : (yRaw as Long).toBigInt()
  const result = op === 'add' ? x + y : x * y
  if (!kinds.includes('long') && result >= -2147483648n && result <= 2147483647n) {
    return new Int32(Number(result))
  }
  return Long.fromBigInt(result)
}

/** Apply an operator update to a copy of `doc`. `inserting` enables $setOnInsert. */
export function applyUpdate(doc: Doc, update: Doc, inserting: boolean): Doc {
  const result: Doc = { ...doc }
  for (const [operator, spec] of Object.entries(update)) {
    if (spec === null || typeof spec !== 'object') {
      throw failedToParse(`Modifiers operate on fields but we found type ${typeof spec} instead`)
    }
    for (const [path, operand] of Object.entries(spec as Doc)) {
      switch (operator) {
        case '$set':
          setField(result, path, operand)
          break
        case '$setOnInsert':
          if (inserting) setField(result, path, operand)
          break
        case '$unset':
          unsetField(result, path)
          break
        case '$inc':
          setField(result, path, arithmetic(getField(result, path), operand, 'add', path))
          break
        case '$mul':
          setField(result, path, arithmetic(getField(result, path), operand, 'mul', path))
          break
        case '$min':
        case '$max': {
          const current = getField(result, path)
          const order = compareValues(operand, current)
          if (current === undefined || (operator === '$min' ? order < 0 : order > 0)) {
            setField(result, path, operand)
          }
          break
        }
        case '$rename': {
          const current = getField(result, path)
          if (current !== undefined) {
            unsetField(result, path)
            setField(result, String(operand), current)
          }
          break
        }
        case '$currentDate':
          setField(result, path, new Date())
          break
        case '$push':
        case '$addToSet': {
          const current = getField(result, path)
          if (current !== undefined && !Array.isArray(current)) {
            throw new WriteError(2, `The field '${path}' must be an array but is of another type`)
          }
          const list = [...((current as unknown[] | undefined) ?? [])]
          const each =
            operand !== null && typeof operand === 'object' && '$each' in (operand as Doc)
              ? ((operand as Doc).$each as unknown[])
              : [operand]
          for (const value of each) {
            if (operator === '$addToSet' && list.some((v) => compareValues(v, value) === 0))
              continue
            list.push(value)
          }
          setField(result, path, list)
          break
        }
        case '$pull': {
          const current = getField(result, path)
          if (Array.isArray(current)) {
            setField(
              result,
              path,
              current.filter((v) => compareValues(v, operand) !== 0),
            )
          }
          break
        }
        default:
          throw new CommandError(9, 'FailedToParse', `Unknown modifier: ${operator}`)
      }
    }
  }
  return result
}
