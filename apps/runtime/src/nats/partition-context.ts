// What the pieces of a partitioned run on this instance share (partition-work.ts builds it): the
// options, the runs bucket, the partitions running here and the signal that stops the instance.
import type { PartitionRunsStore } from './partition-runs-store.js'
import type { PartitionWorkOptions } from './partition-work.js'

/** A partition running on this instance. */
export interface LocalPartition {
  runId: string
  index: number
  controller: AbortController
  done: Promise<void>
}

export interface PartitionContext {
  readonly options: PartitionWorkOptions
  readonly store: PartitionRunsStore
  /** The partitions running on this instance. */
  readonly local: Set<LocalPartition>
  /** Aborted when this instance stops taking work. */
  readonly stop: AbortSignal
}

export function abortError(reason: string): Error {
  const error = new Error(reason)
  error.name = 'AbortError'
  return error
}

/** The reason a stopped partition reports. */
export function reasonOf(signal: AbortSignal): string {
  const reason = signal.reason
  return reason instanceof Error
    ? reason.message
    : typeof reason === 'string'
      ? reason
      : 'cancelled'
}
