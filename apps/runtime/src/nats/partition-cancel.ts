// Cancelling partitioned runs: every instance watches the run records in the runs bucket and,
// for each run that has not ended, answers its cancel subject in a queue group (one instance
// answers, while any is alive). A cancel marks the run stopping, aborts its partitions running
// here (the others see it in the run record) and ends the run when nothing of it runs.
import type { Msg, Subscription } from '@nats-io/transport-node'
import {
  CancelRequestSchema,
  errorReply,
  type PartitionedRunRecord,
  parseMessage,
} from '@nvisy/protocol'
import { errorMessage, formatIssues, sleep } from '@nvisy/provider-core'
import { abortError, type PartitionContext } from './partition-context.js'
import type { PartitionOutcome } from './partition-outcome.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class PartitionCancel {
  readonly #ctx: PartitionContext
  readonly #outcome: PartitionOutcome
  readonly #cancelSubscriptions = new Map<string, Subscription>()
  #watch: { stop(): void } | undefined
  #watching: Promise<void> | undefined

  constructor(context: PartitionContext, outcome: PartitionOutcome) {
    this.#ctx = context
    this.#outcome = outcome
  }

  /** Start watching the run records and serving the cancel subjects. */
  start(): void {
    this.#watching = this.#watchRuns()
  }

  /** Stop watching and answer no cancel subject any more (the instance is stopping). */
  close(): void {
    this.#watch?.stop()
    for (const subscription of this.#cancelSubscriptions.values()) subscription.unsubscribe()
    this.#cancelSubscriptions.clear()
  }

  /** Resolves when the watch loop has ended (after `close` and the instance's stop signal). */
  async stopped(): Promise<void> {
    await this.#watching?.catch(() => {})
  }

  async #watchRuns(): Promise<void> {
    const { nc, subjects, naming, log } = this.#ctx.options
    const stop = this.#ctx.stop
    while (!stop.aborted) {
      try {
        const watch = await this.#ctx.store.watchRuns()
        this.#watch = watch
        if (stop.aborted) watch.stop()
        for await (const entry of watch) {
          const runId = entry.key
          const running =
            entry.operation === 'PUT' &&
            entry.value.length > 0 &&
            (() => {
              try {
                return (
                  (JSON.parse(decoder.decode(entry.value)) as PartitionedRunRecord).state !==
                  'ended'
                )
              } catch {
                return false
              }
            })()
          const subscription = this.#cancelSubscriptions.get(runId)
          if (running && !subscription && !stop.aborted) {
            let subject: string
            try {
              subject = subjects.runCancel(runId)
            } catch {
              continue
            }
            this.#cancelSubscriptions.set(
              runId,
              nc.subscribe(subject, {
                queue: naming.cancelQueue,
                callback: (error, msg) => {
                  if (!error) void this.#cancel(runId, msg)
                },
              }),
            )
          } else if (!running && subscription) {
            subscription.unsubscribe()
            this.#cancelSubscriptions.delete(runId)
          }
        }
      } catch (error) {
        if (stop.aborted) break
        log.warn(
          { error: { message: errorMessage(error) } },
          'watching partitioned runs failed; retrying',
        )
        await sleep(1_000, stop).catch(() => {})
      }
    }
  }

  async #cancel(runId: string, msg: Msg): Promise<void> {
    const { log } = this.#ctx.options
    let run: PartitionedRunRecord | undefined
    try {
      run = await this.#ctx.store.getRun(runId)
    } catch {
      return
    }
    if (!run) return
    const respond = (reply: unknown) => {
      if (msg.reply) msg.respond(encoder.encode(JSON.stringify(reply)))
    }
    if (run.state === 'ended') {
      respond(errorReply('not_found', `run ${runId} has already finished`))
      return
    }
    let reason = 'cancelled'
    const parsed = parseMessage(CancelRequestSchema, msg.data)
    if (!parsed.ok) {
      respond(
        errorReply(
          'validation',
          `invalid cancel request: ${formatIssues(parsed.issues)}`,
          parsed.issues,
        ),
      )
      return
    }
    reason = parsed.value.reason ?? reason
    await this.#ctx.store.updateRun(runId, (now) =>
      now.state !== 'running'
        ? undefined
        : { ...now, state: 'stopping', stop: { reason: 'cancelled', message: reason } },
    )
    for (const partition of this.#ctx.local)
      if (partition.runId === runId && !partition.controller.signal.aborted)
        partition.controller.abort(abortError(reason))
    log.info({ runId, reason }, 'partitioned run cancel requested')
    respond({ cancelled: true })
    // A run whose partitions are all queued ends when they are taken (each is recorded cancelled).
    await this.#outcome.finish(runId).catch(() => {})
  }
}
