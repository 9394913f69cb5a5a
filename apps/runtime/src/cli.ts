#!/usr/bin/env node
import { main } from './main.js'

// First SIGINT/SIGTERM cancels the run gracefully (checkpoints are written); a second one exits at once.
const controller = new AbortController()
let signals = 0
const onSignal = (name: NodeJS.Signals) => {
  signals++
  if (signals > 1) process.exit(130)
  process.stderr.write(`\nnvisy: ${name} received, stopping (again to exit at once)\n`)
  controller.abort(`${name} received`)
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
})
process.exitCode = code
process.off('SIGINT', onSignal)
process.off('SIGTERM', onSignal)
