import { parentPort, workerData } from 'node:worker_threads'
import { enableCompileCache } from './compile-cache.js'
import type { CeilingWorkerData } from './heap-ceiling.js'

// Before the CLI's modules load (below), so that they come from the compile cache.
enableCompileCache((workerData as CeilingWorkerData).args, process.env)

// The CLI under a heap ceiling (heap-ceiling.ts): the main thread keeps the signals and passes
// each on as a message; the first one cancels the run gracefully, as in cli.ts.
const data = workerData as CeilingWorkerData
const controller = new AbortController()
parentPort?.on('message', (message: { type?: string; name?: string }) => {
  if (message?.type !== 'signal') return
  process.stderr.write(`\nnvisy: ${message.name} received, stopping (again to exit at once)\n`)
  controller.abort(`${message.name} received`)
})
parentPort?.unref()

const { main } = await import('./main.js')
process.exitCode = await main(data.args, {
  stdout: process.stdout,
  stderr: Object.assign(process.stderr, { isTTY: data.stderrIsTTY }),
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
})
