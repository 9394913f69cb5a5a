import {
  type Data,
  describeItem,
  ProviderError,
  raceAbort,
  retry,
  toProviderError,
} from '@nvisy/provider-core'
import { convertAll, converterFor, isConversionFailure } from './convert.js'
import type { RunState, SinkRuntime } from './run-state.js'

/**
 * Report one item that failed alone and send it to the dead-letter sink. An item the
 * dead-letter sink took has arrived; one that reached no dead-letter sink is refused and
 * spends the failure budget (0 unless the pipeline sets one): past it the run fails.
 */
export async function itemFailed(
  run: RunState,
  sink: SinkRuntime,
  data: Data,
  index: number | undefined,
  error: ProviderError,
  item?: string,
): Promise<void> {
  sink.stats.failed++
  run.failedItems++
  const described = item ?? describeItem(data)
  run.emit({
    type: 'item_failed',
    nodeId: sink.node.id,
    ...(index === undefined ? {} : { index }),
    item: described,
    error: error.toJSON(),
  })
  run.logger.warn({ nodeId: sink.node.id, item: described, err: error.toJSON() }, 'item failed')
  const deadLetter = sink.deadLetter
  let why = `${described} at node ${sink.node.id}: ${error.message}`
  if (deadLetter) {
    const refusal = await writeDeadLetter(run, deadLetter, data)
    if (refusal === undefined) {
      run.deadLettered++
      return
    }
    why += `; dead-letter sink ${deadLetter.node.id} did not take it either: ${refusal}`
  }
  run.refusedItems++
  if (run.failureBudget !== null && run.refusedItems > run.failureBudget) {
    const n = run.refusedItems
    throw new ProviderError({
      kind: 'data',
      message: `failure budget spent: ${n} item${n === 1 ? '' : 's'} refused, the pipeline allows ${run.failureBudget}${run.failureBudget === 0 ? ' (set options.failureBudget, or a deadLetter sink on the sink node, to let a run go on)' : ''} (last: ${why})`,
    })
  }
}

/** Write one failed item to a dead-letter sink: undefined when it arrived, else why not. */
async function writeDeadLetter(
  run: RunState,
  deadLetter: SinkRuntime,
  data: Data,
): Promise<string | undefined> {
  const converter = converterFor(data.kind, deadLetter.kind, deadLetter.node.convert)
  if (!converter) return `it takes ${deadLetter.kind} items, not ${data.kind}`
  const batch: Data[] = []
  for await (const converted of convertAll(converter, data, undefined)) {
    if (isConversionFailure(converted)) return converted.error.message
    batch.push(converted)
  }
  if (batch.length === 0) return 'the conversion made no item of it'
  await deadLetter.semaphore.acquire(run.signal)
  try {
    const result = await retry(
      () =>
        raceAbort(
          deadLetter.connection!.write(deadLetter.stream, batch, { signal: run.signal }),
          run.signal,
        ),
      run.retryOptions(deadLetter.node.id, 'write'),
    )
    deadLetter.stats.items += result.written
    for (const failure of result.failed) {
      deadLetter.stats.failed++
      run.emit({
        type: 'item_failed',
        nodeId: deadLetter.node.id,
        index: failure.index,
        item: describeItem(batch[failure.index]!),
        error: failure.error.toJSON(),
      })
    }
    return result.failed.length === 0 ? undefined : result.failed[0]!.error.message
  } catch (error) {
    if (run.signal.aborted) throw error
    const failure = toProviderError(error)
    run.logger.warn(
      { nodeId: deadLetter.node.id, err: failure.toJSON() },
      'dead-letter write failed',
    )
    return failure.message
  } finally {
    deadLetter.semaphore.release()
  }
}
