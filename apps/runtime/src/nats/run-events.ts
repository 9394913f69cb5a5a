import { randomUUID } from 'node:crypto'
import type { JetStreamClient } from '@nats-io/jetstream'
import { type RunEvent, type RunEventBody, validateRunEvent } from '@nvisy/protocol'
import { formatIssues, type Logger } from '@nvisy/provider-core'

const encoder = new TextEncoder()
const TERMINAL = new Set(['completed', 'partial', 'failed', 'cancelled'])

/**
 * Publishes one run's events to JetStream in order: each gets the envelope (runId,
 * pipelineId, at, seq) and a message id that makes a retried publish land once. A failed
 * publish is logged and does not stop the run: checkpoints live in the KV bucket, not here.
 */
export class RunEventPublisher {
  readonly #js: JetStreamClient
  readonly #subject: string
  readonly #runId: string
  readonly #pipelineId: string
  readonly #logger: Logger
  readonly #attempt = randomUUID()
  #seq = 0
  #chain: Promise<void> = Promise.resolve()
  #terminal = false

  constructor(
    js: JetStreamClient,
    subject: string,
    run: { runId: string; pipelineId: string },
    logger: Logger,
  ) {
    this.#js = js
    this.#subject = subject
    this.#runId = run.runId
    this.#pipelineId = run.pipelineId
    this.#logger = logger
  }

  /** True once a completed, partial, failed or cancelled event was published. */
  get terminal(): boolean {
    return this.#terminal
  }

  publish(body: RunEventBody | { type: string; [key: string]: unknown }): Promise<void> {
    const event = {
      ...body,
      runId: this.#runId,
      pipelineId: this.#pipelineId,
      at: new Date().toISOString(),
      seq: this.#seq++,
    } as RunEvent
    if (TERMINAL.has(event.type)) this.#terminal = true
    const sent = this.#chain.then(() => this.#send(event))
    this.#chain = sent
    return sent
  }

  /** Resolves when every event published so far has been sent (or failed and been logged). */
  idle(): Promise<void> {
    return this.#chain
  }

  async #send(event: RunEvent): Promise<void> {
    const checked = validateRunEvent(event)
    if (!checked.ok) {
      this.#logger.warn(
        { runId: this.#runId, type: event.type, seq: event.seq, issues: checked.issues },
        `run event does not match the protocol schema: ${formatIssues(checked.issues)}`,
      )
    }
    try {
      await this.#js.publish(this.#subject, encoder.encode(JSON.stringify(event)), {
        msgID: `${this.#attempt}.${event.seq}`,
        retries: 3,
      })
    } catch (error) {
      this.#logger.error(
        {
          runId: this.#runId,
          type: event.type,
          seq: event.seq,
          error: { name: (error as Error)?.name, message: (error as Error)?.message },
        },
        'could not publish a run event',
      )
    }
  }
}
