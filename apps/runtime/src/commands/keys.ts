import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { createRuntimeKeys, defaultSeedPath, writeSeedFile } from '../keys.js'
import { type CliIo, EXIT, json, UsageError } from './shared.js'

export const KEYS_HELP = `Usage: nvisy keys [--out file] [--force] [--print-seed]

Creates the runtime's key pair (an xkey: X25519, as NATS nkeys make it). The Nvisy server seals
each connection's credentials to the public key; only the seed opens them. Every instance of one
deployment shares the seed. Prints {"publicKey": "X...", "seedFile": "..."} as JSON on stdout.
  --out file        where the seed goes (default ~/.nvisy/runtime.seed), created mode 0600
  --force           replace an existing seed file (the server must then get the new public key)
  --print-seed      print the seed on stdout as {"publicKey", "seed"} instead of writing a file,
                    e.g. to put it in a secret store as NVISY_RUNTIME_SEED; nothing is written
Then: nvisy serve reads the seed (NVISY_RUNTIME_SEED, --seed-file, NVISY_RUNTIME_SEED_FILE or
~/.nvisy/runtime.seed), and the server gets the public key (it is also in the catalog reply
and in serve's "serving" log line).
Exit codes: 0 created, 2 the file exists (without --force), cannot be written, or bad flags.
`

/** `nvisy keys`: a new runtime key pair; the seed to a private file (or stdout when asked). */
export async function keysCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      force: { type: 'boolean' },
      'print-seed': { type: 'boolean' },
    },
    allowPositionals: false,
  })
  if (values['print-seed'] === true && (values.out !== undefined || values.force === true))
    throw new UsageError('--print-seed writes no file: give it without --out and --force')
  const keys = createRuntimeKeys()
  if (values['print-seed'] === true) {
    io.stdout.write(json({ publicKey: keys.publicKey, seed: keys.seed }))
    return EXIT.completed
  }
  const path = values.out === undefined ? defaultSeedPath(io.env) : resolve(io.cwd, values.out)
  await writeSeedFile(path, keys.seed, values.force === true)
  io.stdout.write(json({ publicKey: keys.publicKey, seedFile: path }))
  io.stderr.write(
    `nvisy: wrote the runtime seed to ${path} (mode 0600; nvisy serve reads it${
      values.out === undefined ? '' : ` with --seed-file ${values.out} or NVISY_RUNTIME_SEED_FILE`
    }). Give the Nvisy server this public key: ${keys.publicKey}\n`,
  )
  return EXIT.completed
}
