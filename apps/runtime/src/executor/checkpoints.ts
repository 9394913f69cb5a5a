import { ProviderError, retry, toProviderError } from '@nvisy/provider-core'
import { DEFAULTS } from './defaults.js'
import type { RunState, SourceRuntime } from './run-state.js'

/**
 * Load each source's stored checkpoint as its resume context (unless the run does not
 * resume). Done before any connection opens, so a bad stored checkpoint fails first.
 */
export async function loadCheckpoints(run: RunState): Promise<void> {
  if (run.options.resume === false) return
  for (const source of run.sources) {
    const stored = await run.options.checkpoints.load(run.pipeline.id, source.node.id)
    if (stored !== undefined) {
      try {
        source.after = source.provider.validateContext(structuredClone(stored))
      } catch (error) {
        throw new ProviderError({
          kind: 'config',
          providerId: source.provider.id,
          message: `stored checkpoint of node ${source.node.id} does not fit provider ${source.provider.id}: ${(error as Error).message}`,
          cause: error,
        })
      }
      run.checkpoints[source.node.id] = stored
      run.logger.info({ nodeId: source.node.id }, 'resuming after stored checkpoint')
    }
  }
}

function everyItemsOf(run: RunState): number {
  return run.pipeline.options?.checkpointEveryItems ?? DEFAULTS.checkpointEveryItems
}

/** The acknowledged prefix of a source grew by `items`: save it when the item or time cadence is due. */
export function onCommit(run: RunState, source: SourceRuntime, items: number): void {
  // The cadence is in rows: a batch item counts the rows items hold on average so far.
  source.sinceSave += source.wire
    ? items * (source.stats.items / Math.max(1, source.itemsRead))
    : items
  const everyItems = everyItemsOf(run)
  const everyMs =
    (run.pipeline.options?.checkpointEverySeconds ?? DEFAULTS.checkpointEverySeconds) * 1000
  if (source.sinceSave >= everyItems || Date.now() - source.lastSaveAt >= everyMs)
    saveCheckpoint(run, source)
}

/** The time cadence (called on a timer): save each source with unsaved commits whose last save is old enough. */
export function checkpointByTime(run: RunState): void {
  const everyMs =
    (run.pipeline.options?.checkpointEverySeconds ?? DEFAULTS.checkpointEverySeconds) * 1000
  for (const source of run.sources) {
    if (source.sinceSave > 0 && Date.now() - source.lastSaveAt >= everyMs)
      saveCheckpoint(run, source)
  }
}

/** Start a save of the committed context (one at a time per source; a request during a save queues one more). */
function saveCheckpoint(run: RunState, source: SourceRuntime): void {
  if (source.saving) {
    source.saveAgain = true
    return
  }
  source.saving = (async () => {
    try {
      do {
        source.saveAgain = false
        const committed = source.tracker.committed
        if (!committed || (source.saved && source.saved.seq >= committed.seq)) continue
        source.sinceSave = 0
        source.lastSaveAt = Date.now()
        await retry(
          () =>
            run.options.checkpoints.save(
              run.pipeline.id,
              source.node.id,
              committed.context,
              run.options.runId,
            ),
          { maxAttempts: run.maxAttempts, baseDelayMs: run.options.retryBaseDelayMs ?? 200 },
        )
        source.saved = committed
        run.checkpoints[source.node.id] = committed.context
        run.emit({ type: 'checkpoint', nodeId: source.node.id, context: committed.context })
      } while (source.saveAgain)
    } catch (error) {
      run.fail(
        new ProviderError({
          kind: toProviderError(error).kind,
          message: `saving the checkpoint of node ${source.node.id} failed: ${(error as Error).message}`,
          cause: error,
        }),
        true,
      )
    } finally {
      source.saving = undefined
    }
  })()
}

/** Wait for a save in flight, then save what is committed and not saved yet. */
export async function flushCheckpoint(run: RunState, source: SourceRuntime): Promise<void> {
  while (source.saving) await source.saving
  const committed = source.tracker.committed
  if (!committed || (source.saved && source.saved.seq >= committed.seq)) return
  saveCheckpoint(run, source)
  while (source.saving) await source.saving
}
