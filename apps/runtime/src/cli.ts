#!/usr/bin/env node
import { enableCompileCache } from './compile-cache.js'
import { HeapCeilingError, heapCeilingMb, runUnderHeapCeiling } from './heap-ceiling.js'

enableCompileCache(process.argv.slice(2), process.env)

// First SIGINT/SIGTERM cancels the run gracefully (checkpoints are written); a second one exits at once.
const controller = new AbortController()
const handlers = new Set<(name: NodeJS.Signals) => void>()
let signals = 0
const onSignal = (name: NodeJS.Signals) => {
  signals++
  if (signals > 1) process.exit(130)
  if (handlers.size > 0) for (const handler of handlers) handler(name)
  else {
    process.stderr.write(`\nnvisy: ${name} received, stopping (again to exit at once)\n`)
    controller.abort(`${name} received`)
  }
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

const args = process.argv.slice(2)
let code: number
try {
  // Run from source (tests through a TypeScript loader), a worker would not get the loader.
  const fromSource = import.meta.url.endsWith('.ts')
  const ceiling = fromSource ? undefined : heapCeilingMb(args, process.env, process.execArgv)
  if (ceiling === undefined) {
    const { main } = await import('./main.js')
    code = await main(args, {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      cwd: process.cwd(),
      signal: controller.signal,
    })
  } else {
    code = await runUnderHeapCeiling(ceiling, args, {
      stderr: process.stderr,
      onSignal(handler) {
        handlers.add(handler)
        return () => handlers.delete(handler)
      },
    })
  }
} catch (error) {
  if (!(error instanceof HeapCeilingError)) throw error
  process.stderr.write(`nvisy: ${error.message}\n`)
  code = 2
}
process.exitCode = code
process.off('SIGINT', onSignal)
process.off('SIGTERM', onSignal)
