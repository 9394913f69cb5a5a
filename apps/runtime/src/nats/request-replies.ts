import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node'
import { type ErrorReply, errorReply, type ProtocolErrorKind, parseMessage } from '@nvisy/protocol'
import {
  errorMessage,
  formatIssues,
  type Logger,
  ProviderError,
  type Static,
  type TSchema,
  type ValidationIssue,
} from '@nvisy/provider-core'
import { RefusalLog } from './logging.js'

const encoder = new TextEncoder()

/** A request refused before any work: answered with an error reply naming each issue. */
export class RequestRejected extends Error {
  constructor(
    readonly kind: ProtocolErrorKind,
    message: string,
    readonly issues?: ValidationIssue[],
  ) {
    super(message)
  }
}

export function rejectInvalid(what: string, issues: ValidationIssue[]): RequestRejected {
  return new RequestRejected('validation', `invalid ${what}: ${formatIssues(issues)}`, issues)
}

/** The request in `msg`, or a `validation` refusal naming each issue. */
export function parseRequest<T extends TSchema>(schema: T, msg: Msg, what: string): Static<T> {
  const parsed = parseMessage(schema, msg.data)
  if (!parsed.ok) throw rejectInvalid(what, parsed.issues)
  return parsed.value
}

function prefixIssues(
  issues: ValidationIssue[] | undefined,
  prefix: string,
): ValidationIssue[] | undefined {
  return issues?.map((issue) =>
    /^\/(credentials|params|stream)(\/|$)/.test(issue.path)
      ? { ...issue, path: `${prefix}${issue.path}` }
      : issue,
  )
}

/** What the request side of the dispatcher needs from its state. */
export interface RequestRepliesContext {
  nc: NatsConnection
  naming: { queueGroup: string }
  log: Logger
  instanceId: string
}

/**
 * Serves request subjects in the queue group and answers every message: a handler's result
 * is the reply, whatever it throws becomes an error reply (never a crash). Keeps the handlers
 * in flight so a drain can wait for them.
 */
export class RequestReplies {
  readonly #c: RequestRepliesContext
  readonly #handlers = new Set<Promise<void>>()
  readonly #subscriptions: Subscription[] = []
  #refusals: RefusalLog | undefined

  constructor(context: RequestRepliesContext) {
    this.#c = context
  }

  /** Subscribe to `subject` in the queue group and answer each request with `handler`. */
  serve(subject: string, handler: (msg: Msg) => Promise<unknown>): void {
    const subscription = this.#c.nc.subscribe(subject, {
      queue: this.#c.naming.queueGroup,
      callback: (error, msg) => {
        if (error) {
          this.#c.log.error({ subject, error: { message: error.message } }, 'subscription error')
          return
        }
        this.handle(subject, msg, handler)
      },
    })
    this.#subscriptions.push(subscription)
  }

  /** Answer one message with `handler`, tracked until the reply is sent. */
  handle(subject: string, msg: Msg, handler: (msg: Msg) => Promise<unknown>): void {
    this.#track(this.#answer(subject, msg, handler))
  }

  /** Stop taking requests on the subjects passed to `serve`. */
  stopServing(): void {
    for (const subscription of this.#subscriptions) subscription.unsubscribe()
  }

  /** Resolves when every request handled so far has been answered. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#handlers])
  }

  /** Logs the count of refusals the rate limit held back, if any. */
  close(): void {
    this.#refusals?.close()
  }

  #track(promise: Promise<void>): void {
    this.#handlers.add(promise)
    promise.finally(() => this.#handlers.delete(promise)).catch(() => {})
  }

  /** Run a handler and reply; whatever it throws becomes an error reply, never a crash. */
  async #answer(subject: string, msg: Msg, handler: (msg: Msg) => Promise<unknown>): Promise<void> {
    let reply: unknown
    try {
      reply = await handler(msg)
    } catch (error) {
      reply = this.#errorReply(subject, error)
    }
    if (!msg.reply) return
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)))
    } catch (error) {
      this.#c.log.warn(
        { subject, error: { message: errorMessage(error) } },
        'could not send a reply',
      )
    }
  }

  #errorReply(subject: string, error: unknown): ErrorReply {
    const log = this.#c.log
    // Refusals are rate-limited (logging.ts): a flood of bad messages costs a few lines.
    this.#refusals ??= new RefusalLog(log)
    if (error instanceof RequestRejected) {
      this.#refusals.refused(
        subject,
        { kind: error.kind, issues: error.issues },
        `request refused: ${error.message}`,
      )
      return errorReply(error.kind, error.message, error.issues)
    }
    if (ProviderError.isInstance(error)) {
      const { cursor: _cursor, ...serialized } = error.toJSON()
      const issues = prefixIssues(serialized.issues, '/connection')
      if (issues) serialized.issues = issues
      this.#refusals.refused(subject, { error: serialized }, `request failed: ${error.message}`)
      return { error: serialized }
    }
    log.error(
      { subject, error: { name: (error as Error)?.name, message: errorMessage(error) } },
      'request handler failed',
    )
    return errorReply(
      'internal',
      `the runtime failed to handle ${subject}; see its logs (instance ${this.#c.instanceId})`,
    )
  }
}
