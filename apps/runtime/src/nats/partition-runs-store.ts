// The partitioned-runs KV bucket: one record per run (key `<runId>`) and one per ended partition
// (key `<runId>.<index>`, created once). The run record changes only by compare-and-set.
import type { KV } from '@nats-io/kv'
import {
  type PartitionedRunRecord,
  PartitionedRunRecordSchema,
  type PartitionRecord,
  PartitionRecordSchema,
  partitionRecordKey,
  validateMessage,
} from '@nvisy/protocol'
import { errorMessage, formatIssues, ProviderError } from '@nvisy/provider-core'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** True for the error a KV compare-and-set (`update` with a revision, `create`) fails with when it lost. */
export function lostRace(error: unknown): boolean {
  const text = `${(error as { name?: string })?.name ?? ''} ${errorMessage(error)}`
  return /wrong last sequence|key exists|10071/i.test(text)
}

export class PartitionRunsStore {
  constructor(readonly kv: KV) {}

  async getRun(runId: string): Promise<PartitionedRunRecord | undefined> {
    return (await this.getRunEntry(runId))?.record
  }

  async getRunEntry(
    runId: string,
  ): Promise<{ record: PartitionedRunRecord; revision: number } | undefined> {
    const entry = await this.kv.get(runId)
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined
    const checked = validateMessage(
      PartitionedRunRecordSchema,
      JSON.parse(decoder.decode(entry.value)),
    )
    if (!checked.ok)
      throw new ProviderError({
        kind: 'internal',
        message: `the partitioned run record ${runId} is not valid: ${formatIssues(checked.issues)}`,
      })
    return { record: checked.value, revision: entry.revision }
  }

  async getPartition(runId: string, index: number): Promise<PartitionRecord | undefined> {
    const entry = await this.kv.get(partitionRecordKey(runId, index))
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined
    const checked = validateMessage(PartitionRecordSchema, JSON.parse(decoder.decode(entry.value)))
    return checked.ok ? checked.value : undefined
  }

  /** Create the run record; fails (see `lostRace`) when the run id was used before. */
  async createRun(runId: string, record: PartitionedRunRecord): Promise<void> {
    await this.kv.create(runId, encoder.encode(JSON.stringify(record)))
  }

  /** Create a partition's end record; fails (see `lostRace`) when it was recorded before. */
  async createPartition(runId: string, index: number, record: PartitionRecord): Promise<void> {
    await this.kv.create(partitionRecordKey(runId, index), encoder.encode(JSON.stringify(record)))
  }

  /** Watch the run records: single-token keys are the run records (`<runId>`); partition records have a dot. */
  watchRuns() {
    return this.kv.watch({ key: '*' })
  }

  /** Compare-and-set the run record; `change` returns undefined to leave it. True when this call changed it. */
  async updateRun(
    runId: string,
    change: (record: PartitionedRunRecord) => PartitionedRunRecord | undefined,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const entry = await this.getRunEntry(runId)
      if (!entry) return false
      const next = change(structuredClone(entry.record))
      if (!next) return false
      try {
        await this.kv.update(runId, encoder.encode(JSON.stringify(next)), entry.revision)
        return true
      } catch (error) {
        if (!lostRace(error)) throw error
      }
    }
    throw new ProviderError({
      kind: 'transient',
      message: `the partitioned run record ${runId} kept changing: could not update it`,
    })
  }
}
