import { constants } from 'node:fs'
import { access, lstat, readdir, realpath, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import {
  type Connection,
  type Data,
  type Logger,
  mapConcurrent,
  type PartitionPlan,
  ProviderError,
  type ReadItem,
  type StreamInfo,
  type WriteFailure,
  type WriteResult,
} from '@nvisy/provider-core'
import { type ConfinedDir, openConfinedDir } from './fs-confined.js'
import { ensureDirectory } from './fs-directories.js'
import { classifyFsError, configError, dataError } from './fs-errors.js'
import { partitionBlobs, partitionJsonl } from './fs-partition.js'
import { isWithin, relativePathProblem } from './fs-paths.js'
import type {
  FsBlobContext,
  FsContext,
  FsDocumentContext,
  FsDocumentStream,
  FsSinkStream,
  FsStream,
} from './fs-schemas.js'
import { appendDocuments, type IdIndex, removeStaleTemps, writeBlob } from './fs-sink.js'
import { readBlobs, readJsonl, validateBlobStream } from './fs-source.js'

export interface FsConnectionOptions {
  /** The root directory, absolute. */
  root: string
  readOnly: boolean
  /** Blobs written at once within a batch. */
  writeConcurrency: number
  /** The longest JSONL line read or written. */
  maxLineBytes: number
  logger: Logger
}

export class FsConnection implements Connection<FsStream, FsContext, FsSinkStream> {
  readonly #options: FsConnectionOptions
  readonly #indexes = new Map<string, IdIndex>()
  /** Folders this connection has swept of stale temporary files (once each). */
  readonly #swept = new Set<string>()

  constructor(options: FsConnectionOptions) {
    this.#options = options
  }

  get root(): string {
    return this.#options.root
  }

  /** The root with every symlink resolved: what "inside the root" is measured against. */
  async #realRoot(): Promise<string> {
    const root = this.#options.root
    let real: string
    try {
      real = await realpath(root)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ProviderError({
          kind: 'not_found',
          message: `root directory ${root} does not exist`,
          code: 'ENOENT',
          cause: error,
        })
      }
      throw error
    }
    const info = await stat(real)
    if (!info.isDirectory()) {
      throw new ProviderError({
        kind: 'config',
        message: `root ${root} is not a directory`,
        code: 'ENOTDIR',
      })
    }
    return real
  }

  async check(): Promise<void> {
    const real = await this.#realRoot()
    const mode = constants.R_OK | constants.X_OK | (this.#options.readOnly ? 0 : constants.W_OK)
    try {
      await access(real, mode)
    } catch (error) {
      const wanted = this.#options.readOnly ? 'readable' : 'readable and writable'
      throw new ProviderError({
        kind: 'auth',
        message: `root directory ${this.#options.root} is not ${wanted} by this process`,
        code: (error as NodeJS.ErrnoException).code,
        cause: error,
      })
    }
  }

  /** The root, each top-level folder, and each top-level JSON Lines file. */
  async discover(): Promise<StreamInfo[]> {
    const real = await this.#realRoot()
    const streams: StreamInfo[] = [
      {
        name: '/',
        type: 'directory',
        data: 'blob',
        stream: { kind: 'blob' },
        description: 'every file under the root',
      },
    ]
    const entries = await readdir(real, { withFileTypes: true })
    entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
    for (const entry of entries) {
      if (entry.isDirectory()) {
        streams.push({
          name: `${entry.name}/`,
          type: 'directory',
          data: 'blob',
          stream: { kind: 'blob', prefix: `${entry.name}/` },
        })
      } else if (entry.isFile() && /\.(jsonl|ndjson)$/.test(entry.name)) {
        streams.push({
          name: entry.name,
          type: 'jsonl',
          data: 'document',
          stream: { kind: 'document', file: entry.name },
        })
      }
    }
    return streams
  }

  read(
    stream: FsStream,
    options: { after?: FsContext | undefined; signal: AbortSignal },
  ): AsyncIterable<ReadItem<FsContext>> {
    const { after, signal } = options
    const self = this
    if (stream.kind === 'blob') {
      if (after !== undefined && !('key' in after)) {
        throw configError(
          '/after',
          'context',
          'is a document context ({ line, offset }); a blob stream resumes from { key }',
        )
      }
      validateBlobStream(stream)
      return (async function* () {
        const real = await self.#realRoot()
        yield* readBlobs(
          real,
          stream,
          after as FsBlobContext | undefined,
          signal,
          self.#options.logger,
        )
      })()
    }
    if (after !== undefined && !('offset' in after)) {
      throw configError(
        '/after',
        'context',
        'is a blob context ({ key }); a document stream resumes from { line, offset }',
      )
    }
    return (async function* () {
      const path = await self.#documentFile(stream, false)
      yield* readJsonl(
        path,
        stream.file,
        stream.idField ?? 'id',
        after as FsDocumentContext | undefined,
        signal,
        self.#options.maxLineBytes,
        undefined,
        stream.range,
      )
    })()
  }

  /** Blobs: key ranges over the listing. Documents: line ranges of the JSONL file. */
  async partition(
    stream: FsStream,
    options: { count: number; signal: AbortSignal },
  ): Promise<PartitionPlan<FsStream>> {
    if (stream.kind === 'blob') {
      validateBlobStream(stream)
      const real = await this.#realRoot()
      return partitionBlobs(real, stream, options.count, options.signal, this.#options.logger)
    }
    const path = await this.#documentFile(stream, false)
    return partitionJsonl(path, stream, options.count, options.signal)
  }

  /**
   * The real path of a stream's JSONL file. It may not leave the root, by ".." or through a
   * symlink; for a write its folder is created (inside the root) when missing.
   */
  async #documentFile(stream: FsDocumentStream, forWrite: boolean): Promise<string> {
    const problem = relativePathProblem(stream.file)
    if (problem) throw configError('/stream/file', 'path', problem)
    const real = await this.#realRoot()
    const segments = stream.file.split('/').filter((s) => s !== '')
    const name = segments.pop()!
    let dir: string
    try {
      dir = await ensureDirectory(
        real,
        forWrite ? segments : [],
        `file ${JSON.stringify(stream.file)}`,
      )
      if (!forWrite) dir = join(real, ...segments)
    } catch (error) {
      if (ProviderError.isInstance(error)) throw configError('/stream/file', 'path', error.message)
      throw error
    }
    const path = join(dir, name)
    let resolved: string
    try {
      resolved = await realpath(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      if (!forWrite) {
        throw new ProviderError({
          kind: 'not_found',
          message: `${stream.file} does not exist under the root`,
          code: 'ENOENT',
          cause: error,
        })
      }
      return path
    }
    if (!isWithin(real, resolved)) {
      throw configError(
        '/stream/file',
        'path',
        'resolves (through a symlink) to a file outside the root',
      )
    }
    return resolved
  }

  /**
   * The folder (held open, see fs-confined.ts) and name of a stream's JSONL file for a write.
   * Folders are created inside the root; none is a symlink leading out of it. The file itself
   * may be a symlink only to an existing file inside the root (its real place is used); a
   * dangling one is refused, as it would create a file wherever it points.
   */
  async #documentTarget(
    stream: FsDocumentStream,
  ): Promise<{ key: string; dir: ConfinedDir; name: string }> {
    const problem = relativePathProblem(stream.file)
    if (problem) throw configError('/stream/file', 'path', problem)
    const real = await this.#realRoot()
    const what = `file ${JSON.stringify(stream.file)}`
    const segments = stream.file.split('/').filter((s) => s !== '')
    let name = segments.pop()!
    let dir = await openConfinedDir(real, segments, what, true)
    try {
      const entry = await lstat(dir.at(name)).catch(() => undefined)
      if (entry?.isSymbolicLink()) {
        const resolved = await realpath(dir.at(name)).catch(() => undefined)
        if (resolved === undefined) {
          throw dataError(`${what} is a dangling symlink; refusing to create the file it points to`)
        }
        if (!isWithin(real, resolved)) {
          throw configError(
            '/stream/file',
            'path',
            'resolves (through a symlink) to a file outside the root',
          )
        }
        const inside = relative(real, resolved).split(sep)
        name = inside.pop()!
        await dir.close()
        dir = await openConfinedDir(real, inside, what, false)
      }
      return { key: join(dir.realPath, name), dir, name }
    } catch (error) {
      await dir.close()
      throw error
    }
  }

  async write(
    stream: FsSinkStream,
    batch: readonly Data[],
    options: { signal: AbortSignal },
  ): Promise<WriteResult> {
    if (this.#options.readOnly) {
      throw new ProviderError({
        kind: 'config',
        message: `root ${this.#options.root} is read-only (params.readOnly)`,
      })
    }
    const { signal } = options
    if (stream.kind === 'document') {
      const target = await this.#documentTarget(stream)
      try {
        return await appendDocuments(target, stream.file, stream.idField ?? 'id', batch, signal, {
          maxLineBytes: this.#options.maxLineBytes,
          indexes: this.#indexes,
          logger: this.#options.logger,
        })
      } finally {
        await target.dir.close()
      }
    }
    const prefix = stream.prefix ?? ''
    const problem = relativePathProblem(prefix)
    if (problem) throw configError('/stream/prefix', 'path', problem)
    const real = await this.#realRoot()
    // Folders opened once per batch (fs-confined.ts), closed when the batch is done.
    const directories = new Map<string, Promise<ConfinedDir>>()
    const written = new Set<ConfinedDir>()
    try {
      return await this.#writeBlobs(real, prefix, batch, signal, directories, written)
    } finally {
      for (const opened of directories.values())
        await opened.then(
          (d) => d.close(),
          () => {},
        )
    }
  }

  async #writeBlobs(
    real: string,
    prefix: string,
    batch: readonly Data[],
    signal: AbortSignal,
    directories: Map<string, Promise<ConfinedDir>>,
    written: Set<ConfinedDir>,
  ): Promise<WriteResult> {
    const outcomes = await mapConcurrent(batch, this.#options.writeConcurrency, async (item) => {
      try {
        if (item.kind !== 'blob')
          throw new ProviderError({
            kind: 'data',
            message: `a ${item.kind} cannot be written to a blob stream`,
          })
        await writeBlob(real, prefix, item, signal, directories, written)
        return undefined
      } catch (error) {
        return error
      }
    })
    // Each folder that received a file is fsynced once, before the batch counts as written.
    await mapConcurrent([...written], this.#options.writeConcurrency, (dir) => dir.sync())
    // The first time this connection writes into a folder, remove temporary files a killed
    // earlier run left there.
    for (const dir of written) {
      if (this.#swept.has(dir.realPath)) continue
      this.#swept.add(dir.realPath)
      const removed = await removeStaleTemps(dir)
      if (removed > 0)
        this.#options.logger.info(
          { removed },
          `fs: removed ${removed} temporary file(s) left by an interrupted write`,
        )
    }
    const failed: WriteFailure[] = []
    let fatal: unknown
    outcomes.forEach((outcome, index) => {
      if (outcome === undefined) return
      const error = ProviderError.isInstance(outcome)
        ? outcome
        : (classifyFsError(outcome) ?? outcome)
      // Only a fault of the item itself fails alone; a full disk or an abort fails the batch.
      if (ProviderError.isInstance(error) && error.kind === 'data' && !signal.aborted)
        failed.push({ index, error })
      else fatal ??= outcome
    })
    if (fatal !== undefined) throw fatal
    return { written: batch.length - failed.length, failed }
  }

  async close(): Promise<void> {
    this.#indexes.clear()
  }
}
