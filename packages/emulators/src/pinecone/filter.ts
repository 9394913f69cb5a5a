// Pinecone metadata filters: $eq $ne $gt $gte $lt $lte $in $nin $exists, $and $or.
// A field holding a list of strings matches $eq/$in when any element matches, and
// $ne/$nin when no element matches, as the service documents.

import { PineconeApiError } from './errors.js'

export type MetadataValue = string | number | boolean | string[]
export type Metadata = Record<string, MetadataValue>

const FIELD_OPERATORS = new Set([
  '$eq',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$in',
  '$nin',
  '$exists',
])

function invalid(message: string): PineconeApiError {
  return PineconeApiError.data(400, 3, message)
}

/** Check a filter's shape once, so matching never meets a malformed expression. */
export function validateFilter(filter: unknown): asserts filter is Record<string, unknown> {
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw invalid('Invalid filter: a filter must be an object')
  }
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(condition) || condition.length === 0) {
        throw invalid(`Invalid filter: ${key} needs a non-empty array of filters`)
      }
      for (const sub of condition) validateFilter(sub)
      continue
    }
    if (key.startsWith('$')) throw invalid(`Invalid filter: unknown operator ${key}`)
    if (typeof condition === 'object' && condition !== null && !Array.isArray(condition)) {
      for (const [operator, operand] of Object.entries(condition)) {
        if (!FIELD_OPERATORS.has(operator)) {
          throw invalid(`Invalid filter: unknown operator ${operator} for field ${key}`)
        }
        if (operator === '$in' || operator === '$nin') {
          if (!Array.isArray(operand)) {
            throw invalid(`Invalid filter: ${operator} for field ${key} needs an array`)
          }
        } else if (operator === '$exists') {
          if (typeof operand !== 'boolean') {
            throw invalid(`Invalid filter: $exists for field ${key} needs a boolean`)
          }
        } else if (['$gt', '$gte', '$lt', '$lte'].includes(operator)) {
          if (typeof operand !== 'number') {
            throw invalid(`Invalid filter: ${operator} for field ${key} needs a number`)
          }
        } else if (!['string', 'number', 'boolean'].includes(typeof operand)) {
          throw invalid(
            `Invalid filter: ${operator} for field ${key} needs a string, number or boolean`,
          )
        }
      }
    } else if (!['string', 'number', 'boolean'].includes(typeof condition)) {
      throw invalid(
        `Invalid filter: field ${key} must be compared with a string, number or boolean`,
      )
    }
  }
}

function equals(value: MetadataValue | undefined, operand: unknown): boolean {
  if (value === undefined) return false
  if (Array.isArray(value)) return value.includes(operand as string)
  return value === operand
}

function matchField(value: MetadataValue | undefined, operator: string, operand: unknown): boolean {
  switch (operator) {
    case '$eq':
      return equals(value, operand)
    case '$ne':
      return !equals(value, operand)
    case '$in':
      return (operand as unknown[]).some((candidate) => equals(value, candidate))
    case '$nin':
      return !(operand as unknown[]).some((candidate) => equals(value, candidate))
    case '$exists':
      return (value !== undefined) === operand
    case '$gt':
      return typeof value === 'number' && value > (operand as number)
    case '$gte':
      return typeof value === 'number' && value >= (operand as number)
    case '$lt':
      return typeof value === 'number' && value < (operand as number)
    case '$lte':
      return typeof value === 'number' && value <= (operand as number)
    default:
      return false
  }
}

/** Whether metadata satisfies a filter checked by `validateFilter`. */
export function matchesFilter(
  metadata: Metadata | undefined,
  filter: Record<string, unknown>,
): boolean {
  const fields = metadata ?? {}
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$and') {
      if (!(condition as Record<string, unknown>[]).every((sub) => matchesFilter(metadata, sub)))
        return false
      continue
    }
    if (key === '$or') {
      if (!(condition as Record<string, unknown>[]).some((sub) => matchesFilter(metadata, sub)))
        return false
      continue
    }
    const value = Object.hasOwn(fields, key) ? fields[key] : undefined
    if (typeof condition === 'object' && condition !== null) {
      for (const [operator, operand] of Object.entries(condition)) {
        if (!matchField(value, operator, operand)) return false
      }
    } else if (!equals(value, condition)) {
      return false
    }
  }
  return true
}
