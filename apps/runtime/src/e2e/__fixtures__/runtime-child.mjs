// A runtime instance in its own process, from the BUILT packages (dist/), for the fail-over
// test: it joins the queue group, prints one JSON line `{"ready":true,...}` on stdout, and
// serves until it is killed. Settings come as JSON in NVISY_E2E_CHILD.
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { postgresProvider } from '@nvisy/provider-postgres'

const runtimeDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const { executePipeline, MapProviderRegistry, startDispatcher } = await import(
  pathToFileURL(join(runtimeDir, 'dist', 'index.js')).href
)

const settings = JSON.parse(process.env.NVISY_E2E_CHILD ?? '{}')
const dispatcher = await startDispatcher({
  servers: settings.servers,
  registry: new MapProviderRegistry([postgresProvider]),
  execute: executePipeline,
  serverPublicKey: settings.serverPublicKey,
  runtimeSeed: settings.runtimeSeed,
  naming: settings.naming,
  instanceId: settings.instanceId,
  executeOptions: { progressIntervalMs: 100 },
})
process.stdout.write(
  `${JSON.stringify({ ready: true, instanceId: dispatcher.instanceId, publicKey: dispatcher.publicKey, pid: process.pid })}\n`,
)
process.on('SIGTERM', () => {
  dispatcher.drain().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
