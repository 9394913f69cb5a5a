// The partition work queue: the JetStream work-queue stream partitioned runs put their work items
// on, and the durable pull consumer every instance of the queue group takes them from.
import type { JetStreamManager } from '@nats-io/jetstream'
import { AckPolicy } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import type { Subjects } from '@nvisy/protocol'
import { errorMessage, type Logger, ProviderError } from '@nvisy/provider-core'
import type { PartitionWorkNaming } from './partition-work.js'

/** Create the work-queue stream, its durable consumer and the runs bucket when they are missing. */
export async function ensurePartitionWork(
  jsm: JetStreamManager,
  subjects: Subjects,
  naming: PartitionWorkNaming,
  ackWaitMs: number,
  log: Logger,
): Promise<void> {
  try {
    const info = await jsm.streams.info(naming.workStream)
    if (!info.config.subjects?.includes(subjects.partitionWork))
      throw new ProviderError({
        kind: 'config',
        operation: 'connect',
        message: `stream ${naming.workStream} exists without subject ${subjects.partitionWork} (it serves another subject prefix): give this environment its own --work-stream`,
      })
  } catch (error) {
    if (ProviderError.isInstance(error)) throw error
    if (!/not found/i.test(`${(error as { name?: string }).name} ${errorMessage(error)}`))
      throw error
    try {
      await jsm.streams.add({
        name: naming.workStream,
        subjects: [subjects.partitionWork],
        retention: 'workqueue' as never,
        // A work item published twice within this window (a retried publish) lands once.
        duplicate_window: nanos(10 * 60_000),
      })
    } catch (addError) {
      // Another instance created it at the same time.
      await jsm.streams.info(naming.workStream).catch(() => {
        throw addError
      })
    }
  }
  try {
    const info = await jsm.consumers.info(naming.workStream, naming.workConsumer)
    const existing = Math.round(Number(info.config.ack_wait ?? 0) / 1e6)
    if (existing !== ackWaitMs)
      log.warn(
        { consumer: naming.workConsumer, ackWaitMs: existing, asked: ackWaitMs },
        `the partition work consumer exists with an ack wait of ${existing} ms: that one is used`,
      )
  } catch {
    await jsm.consumers
      .add(naming.workStream, {
        durable_name: naming.workConsumer,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(ackWaitMs),
        // Redelivered until it is acknowledged: a partition is never dropped.
        max_deliver: -1,
      })
      .catch(async (error) => {
        await jsm.consumers.info(naming.workStream, naming.workConsumer).catch(() => {
          throw error
        })
      })
  }
}
