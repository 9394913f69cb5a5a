import { randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { createCurve } from '@nats-io/nkeys'
import { ProviderError } from '@nvisy/provider-core'
import { runtimeKeyPair } from './nats/credentials.js'

/** The runtime's xkey seed itself (secret). */
export const RUNTIME_SEED_ENV = 'NVISY_RUNTIME_SEED'
/** A file holding the runtime's xkey seed (`nvisy keys` writes one). */
export const RUNTIME_SEED_FILE_ENV = 'NVISY_RUNTIME_SEED_FILE'

/** `~/.nvisy/runtime.seed`: where `nvisy keys` writes and `nvisy serve` looks by default. */
export function defaultSeedPath(env: NodeJS.ProcessEnv): string {
  return join(env.HOME || homedir(), '.nvisy', 'runtime.seed')
}

function configError(message: string): ProviderError {
  return new ProviderError({ kind: 'config', message })
}

/** A new runtime key pair: the seed (`SX...`, secret) and its public key (`X...`). */
export function createRuntimeKeys(): { seed: string; publicKey: string } {
  const pair = createCurve()
  try {
    const seedBytes = pair.getSeed()
    const seed = new TextDecoder().decode(seedBytes)
    seedBytes.fill(0)
    return { seed, publicKey: pair.getPublicKey() }
  } finally {
    pair.clear()
  }
}

/**
 * Write a seed to `path`, readable by its owner only (0600; a folder created for it 0700).
 * An existing file is refused (a server may trust its public key) unless `force`, which
 * replaces it atomically (a temporary file renamed over it).
 */
export async function writeSeedFile(path: string, seed: string, force: boolean): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const target = force ? join(dirname(path), `.${randomBytes(6).toString('hex')}.seed.tmp`) : path
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(target, 'wx', 0o600)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw configError(
        `${path} exists: a runtime seed is not overwritten (a server may trust its public key); pass --force to replace it, or --out another file`,
      )
    }
    throw configError(
      `cannot write the runtime seed to ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    )
  }
  try {
    // The umask can only take bits away; this makes sure nothing else was granted.
    await handle.chmod(0o600)
    await handle.writeFile(`${seed}\n`, 'utf8')
    await handle.sync()
  } catch (error) {
    await handle.close().catch(() => {})
    await rm(target, { force: true })
    throw error
  }
  await handle.close()
  if (force) {
    try {
      await rename(target, path)
    } catch (error) {
      await rm(target, { force: true })
      throw configError(
        `cannot replace the runtime seed ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      )
    }
    await chmod(path, 0o600)
  }
}

/** Where `nvisy serve` took its runtime key from (for the start-up log line). */
export type SeedSource =
  | { kind: 'env'; variable: typeof RUNTIME_SEED_ENV }
  | { kind: 'file'; path: string }
  | { kind: 'none' }

export interface LoadSeedOptions {
  env: NodeJS.ProcessEnv
  cwd: string
  /** `--seed-file`: wins over `NVISY_RUNTIME_SEED_FILE`. */
  file?: string | undefined
  /** Use a seed file group or others can read (after `warn`). */
  allowInsecureKeyFile?: boolean | undefined
  warn?: ((message: string) => void) | undefined
}

/**
 * The runtime's xkey seed for `nvisy serve`: `NVISY_RUNTIME_SEED`, else the file named by
 * `--seed-file` or `NVISY_RUNTIME_SEED_FILE`, else `~/.nvisy/runtime.seed` when it exists,
 * else none (the dispatcher makes a key pair for this process only). Giving both the seed
 * and a file is an error. A file group or others can read is refused unless allowed. The
 * seed is checked here; no message ever contains it.
 */
export function loadRuntimeSeed(options: LoadSeedOptions): {
  seed: string | undefined
  source: SeedSource
} {
  const { env } = options
  const named = options.file ?? env[RUNTIME_SEED_FILE_ENV]?.trim()
  const inline = env[RUNTIME_SEED_ENV]?.trim()
  if (inline && named) {
    throw configError(
      `set either ${RUNTIME_SEED_ENV} or a seed file (${options.file === undefined ? RUNTIME_SEED_FILE_ENV : '--seed-file'}), not both`,
    )
  }
  if (inline) {
    checkSeed(inline, RUNTIME_SEED_ENV)
    return { seed: inline, source: { kind: 'env', variable: RUNTIME_SEED_ENV } }
  }
  let path: string
  if (named) {
    path = isAbsolute(named) ? named : resolve(options.cwd, named)
  } else {
    path = defaultSeedPath(env)
    try {
      statSync(path)
    } catch {
      return { seed: undefined, source: { kind: 'none' } }
    }
  }
  const seed = readSeedFile(path, options)
  return { seed, source: { kind: 'file', path } }
}

function readSeedFile(path: string, options: LoadSeedOptions): string {
  let text: string
  try {
    if (process.platform !== 'win32') {
      const mode = statSync(path).mode & 0o777
      if ((mode & 0o077) !== 0) {
        const shown = mode.toString(8).padStart(4, '0')
        if (options.allowInsecureKeyFile !== true) {
          throw configError(
            `the runtime seed file ${path} can be read by other users (mode ${shown}); make it private with: chmod 600 ${path}`,
          )
        }
        options.warn?.(
          `warning: the runtime seed file ${path} can be read by other users (mode ${shown}); used because of --allow-insecure-key-file. Fix it with: chmod 600 ${path}`,
        )
      }
    }
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if (ProviderError.isInstance(error)) throw error
    throw configError(
      `cannot read the runtime seed file ${path} (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`,
    )
  }
  const seed = text.trim()
  checkSeed(seed, `the runtime seed file ${path}`)
  return seed
}

function checkSeed(seed: string, where: string): void {
  try {
    runtimeKeyPair(seed).clear()
  } catch {
    throw configError(
      `${where} does not hold an xkey seed ("SX" and 56 more characters, as nvisy keys writes it)`,
    )
  }
}
