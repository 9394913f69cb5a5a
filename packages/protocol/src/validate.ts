import {
  compileSchema,
  type Static,
  type TSchema,
  toIssues,
  type ValidationIssue,
} from '@nvisy/provider-core'
import { RUN_EVENT_TYPES, type RunEvent, RunEventSchema, runEventSchemas } from './events.js'
import type { ErrorReply, ProtocolErrorKind } from './messages.js'

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] }

/**
 * Validate a message against its schema (compiled once per schema). On failure, every
 * issue names the JSON pointer of the failing field and the rule; values are never quoted.
 */
export function validateMessage<T extends TSchema>(
  schema: T,
  value: unknown,
): ValidationResult<Static<T>> {
  const validate = compileSchema(schema)
  if (validate(value)) return { ok: true, value: value as Static<T> }
  return { ok: false, issues: toIssues(validate.errors) }
}

/**
 * Validate a run event by its `type` first, so a bad event gets the issues of its own
 * type instead of one set per member of the union.
 */
export function validateRunEvent(value: unknown): ValidationResult<RunEvent> {
  const type = (value as { type?: unknown } | null)?.type
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof type === 'string' &&
    type in runEventSchemas
  ) {
    return validateMessage(
      runEventSchemas[type as keyof typeof runEventSchemas],
      value,
    ) as ValidationResult<RunEvent>
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return validateMessage(RunEventSchema, value)
  }
  return {
    ok: false,
    issues: [
      type === undefined
        ? { path: '/type', rule: 'required', message: 'is required' }
        : {
            path: '/type',
            rule: 'enum',
            message: `must be one of ${JSON.stringify(RUN_EVENT_TYPES)}`,
          },
    ],
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Decode and validate a NATS payload. An empty payload is `{}` (a bare request); bytes that
 * are not UTF-8 JSON give one issue at `/` with rule `json`.
 */
export function parseMessage<T extends TSchema>(
  schema: T,
  payload: Uint8Array | string,
): ValidationResult<Static<T>> {
  let value: unknown
  try {
    const text = typeof payload === 'string' ? payload : decoder.decode(payload)
    value = text.trim() === '' ? {} : JSON.parse(text)
  } catch {
    // The parser's message quotes the input, which may hold a secret: it is not repeated.
    return { ok: false, issues: [{ path: '/', rule: 'json', message: 'is not valid UTF-8 JSON' }] }
  }
  const tooDeep = pathDeeperThan(value, MAX_MESSAGE_DEPTH)
  if (tooDeep !== undefined) {
    return {
      ok: false,
      issues: [
        {
          path: tooDeep,
          rule: 'maxDepth',
          message: `nests deeper than ${MAX_MESSAGE_DEPTH} levels`,
        },
      ],
    }
  }
  return validateMessage(schema, value)
}

/**
 * How deep a message may nest. Settings objects are free-form JSON; a value nested thousands
 * of levels deep would overflow the stack of whatever copies it later, so it is refused here.
 */
export const MAX_MESSAGE_DEPTH = 64

/** The JSON pointer of the first value nested deeper than `limit`, found without recursion. */
function pathDeeperThan(value: unknown, limit: number): string | undefined {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 0, path: '' }]
  while (stack.length > 0) {
    const { value: current, depth, path } = stack.pop()!
    if (current === null || typeof current !== 'object') continue
    if (depth >= limit) return path || '/'
    const entries = Array.isArray(current)
      ? current.map((v, i) => [String(i), v] as const)
      : Object.entries(current)
    for (const [key, child] of entries) {
      if (child !== null && typeof child === 'object') {
        stack.push({
          value: child,
          depth: depth + 1,
          path: `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        })
      }
    }
  }
  return undefined
}

/** The reply to a request that failed: `{ error: { kind, message, issues? } }`. */
export function errorReply(
  kind: ProtocolErrorKind,
  message: string,
  issues?: ValidationIssue[],
): ErrorReply {
  const error: ErrorReply['error'] = { kind, message }
  if (issues && issues.length > 0) error.issues = issues
  return { error }
}

/** True when a reply is an error reply. */
export function isErrorReply(value: unknown): value is ErrorReply {
  const error = (value as { error?: unknown } | null)?.error
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { kind?: unknown }).kind === 'string'
  )
}
