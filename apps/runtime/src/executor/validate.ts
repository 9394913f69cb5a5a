import {
  checkValue,
  type DataKind,
  type Provider,
  ProviderError,
  type ValidationIssue,
} from '@nvisy/provider-core'
import { isEnvReference } from '../connections.js'
import { type Pipeline, type PipelineNode, PipelineSchema } from '../pipeline-types.js'
import { conversionAllowed, convertOptions } from './convert.js'
import type { ProviderRegistry } from './types.js'

function isEnvReferenceAt(root: unknown, pointer: string): boolean {
  let value = root
  for (const part of pointer.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return false
    value = (value as Record<string, unknown>)[part.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  return isEnvReference(value)
}

function issue(path: string, rule: string, message: string): ValidationIssue {
  return { path, rule, message }
}

function settingsIssues(error: unknown, prefix: string, fallbackPath: string): ValidationIssue[] {
  if (ProviderError.isInstance(error) && error.issues && error.issues.length > 0) {
    return error.issues.map((i) => ({
      ...i,
      path: `${prefix}${i.path === '/' ? '' : i.path}` || '/',
    }))
  }
  return [issue(fallbackPath, 'provider', error instanceof Error ? error.message : String(error))]
}

/** The data kind a node yields (source) or takes (sink), or undefined when its settings are invalid. */
export function nodeDataKind(provider: Provider, node: PipelineNode): DataKind | undefined {
  try {
    return node.role === 'source'
      ? provider.sourceDataKind(provider.validateStream(structuredClone(node.stream)))
      : provider.sinkDataKind(provider.validateSinkStream(structuredClone(node.stream)))
  } catch {
    return undefined
  }
}

/**
 * The pipeline schema without a node's `convert` (any value): a sink's conversion options
 * (declared columns of 30-odd column types) compile to about 150 kB of validation code, about
 * 50 ms at every start, so they are compiled only when a node has them (`checkShape`).
 */
const PipelineShapeSchema = (() => {
  const schema = structuredClone(PipelineSchema) as typeof PipelineSchema
  const node = schema.properties.nodes.items
  ;(node.properties as Record<string, unknown>).convert = {}
  return schema
})()
const ConvertSettingSchema = PipelineSchema.properties.nodes.items.properties.convert

/** `checkValue(PipelineSchema, pipeline)`, the same issues, compiling `convert` only when used. */
export function checkShape(pipeline: unknown): ValidationIssue[] {
  const issues = checkValue(PipelineShapeSchema, pipeline)
  const nodes = (pipeline as { nodes?: unknown } | null)?.nodes
  if (Array.isArray(nodes))
    nodes.forEach((node, i) => {
      const convert = (node as { convert?: unknown } | null)?.convert
      if (convert !== undefined)
        issues.push(...checkValue(ConvertSettingSchema, convert, `/nodes/${i}/convert`))
    })
  return issues
}

/**
 * Check a pipeline before anything runs: its shape, that every provider is loaded and can
 * read or write as used, every node's params and stream settings, and that every edge goes
 * from a source to a sink whose data kinds match or have a built-in conversion.
 * Returns the issues, each with a JSON pointer into the pipeline; none means valid.
 */
export function validatePipeline(pipeline: unknown, registry: ProviderRegistry): ValidationIssue[] {
  const shape = checkShape(pipeline)
  if (shape.length > 0) return shape
  const p = pipeline as Pipeline
  const issues: ValidationIssue[] = []
  const index = new Map<string, number>()
  const kinds = new Map<string, DataKind>()

  p.nodes.forEach((node, i) => {
    const at = `/nodes/${i}`
    if (index.has(node.id)) {
      issues.push(issue(`${at}/id`, 'unique', `node id ${JSON.stringify(node.id)} is used twice`))
      return
    }
    index.set(node.id, i)
    const provider = registry.get(node.provider)
    if (!provider) {
      const known = registry.list().map((x) => x.id)
      issues.push(
        issue(
          `${at}/provider`,
          'provider',
          `provider ${JSON.stringify(node.provider)} is not loaded (loaded: ${known.length ? known.join(', ') : 'none'})`,
        ),
      )
      return
    }
    if (node.role === 'source' && !provider.capabilities.read) {
      issues.push(
        issue(
          `${at}/role`,
          'capability',
          `provider ${provider.id} cannot read, so it cannot be a source`,
        ),
      )
      return
    }
    if (node.role === 'sink' && !provider.capabilities.write) {
      issues.push(
        issue(
          `${at}/role`,
          'capability',
          `provider ${provider.id} cannot write, so it cannot be a sink`,
        ),
      )
      return
    }
    if (node.role === 'source') {
      for (const key of ['batch', 'concurrency', 'convert', 'deadLetter'] as const) {
        if (node[key] !== undefined)
          issues.push(issue(`${at}/${key}`, 'role', `${key} applies to sink nodes only`))
      }
    }
    // A `{"$env": NAME}` value is resolved at run time (CLI), where the provider validates it again.
    issues.push(
      ...checkValue(
        provider.definition.params,
        structuredClone(node.connection.params),
        `${at}/connection/params`,
      ).filter(
        (i) =>
          !isEnvReferenceAt(node.connection.params, i.path.slice(`${at}/connection/params`.length)),
      ),
    )
    try {
      if (node.role === 'source') provider.validateStream(structuredClone(node.stream))
      else provider.validateSinkStream(structuredClone(node.stream))
    } catch (error) {
      issues.push(...settingsIssues(error, at, `${at}/stream`))
      return
    }
    const kind = nodeDataKind(provider, node)
    if (kind) kinds.set(node.id, kind)
  })

  const nodeAt = (id: string) => {
    const i = index.get(id)
    return i === undefined ? undefined : p.nodes[i]
  }
  const seenEdges = new Set<string>()
  const fed = new Set<string>()
  const feeding = new Set<string>()
  p.edges.forEach((edge, i) => {
    const at = `/edges/${i}`
    const from = nodeAt(edge.from)
    const to = nodeAt(edge.to)
    if (!from) issues.push(issue(`${at}/from`, 'node', `no node ${JSON.stringify(edge.from)}`))
    else if (from.role !== 'source')
      issues.push(
        issue(`${at}/from`, 'role', `node ${edge.from} is a sink; edges start at a source`),
      )
    if (!to) issues.push(issue(`${at}/to`, 'node', `no node ${JSON.stringify(edge.to)}`))
    else if (to.role !== 'sink')
      issues.push(issue(`${at}/to`, 'role', `node ${edge.to} is a source; edges end at a sink`))
    if (!from || !to || from.role !== 'source' || to.role !== 'sink') return
    const key = `${edge.from}>${edge.to}`
    if (seenEdges.has(key)) {
      issues.push(issue(at, 'unique', `edge ${edge.from} -> ${edge.to} appears twice`))
      return
    }
    seenEdges.add(key)
    fed.add(edge.to)
    feeding.add(edge.from)
    const fromKind = kinds.get(edge.from)
    const toKind = kinds.get(edge.to)
    if (fromKind === 'document' && toKind === 'record' && !convertOptions(to.convert)?.columns) {
      issues.push(
        issue(
          at,
          'columns',
          `source ${edge.from} yields documents and sink ${edge.to} takes records: declare the record's columns on the sink node (convert.columns)`,
        ),
      )
    } else if (
      fromKind === 'record' &&
      toKind === 'embedding' &&
      !convertOptions(to.convert)?.embedding
    ) {
      issues.push(
        issue(
          at,
          'embedding',
          `source ${edge.from} yields records and sink ${edge.to} takes embeddings: name the id and vector columns on the sink node (convert.embedding: { id, vector })`,
        ),
      )
    } else if (fromKind && toKind && !conversionAllowed(fromKind, toKind)) {
      issues.push(
        issue(
          at,
          'kind',
          `source ${edge.from} yields ${fromKind} items and sink ${edge.to} takes ${toKind}; no built-in conversion turns ${fromKind} into ${toKind}`,
        ),
      )
    }
  })

  p.nodes.forEach((node, i) => {
    const options = convertOptions(node.convert)
    if (!options) return
    const at = `/nodes/${i}/convert`
    const names = new Set<string>()
    options.columns?.forEach((column, c) => {
      if (names.has(column.name))
        issues.push(
          issue(`${at}/columns/${c}/name`, 'unique', `column ${column.name} is declared twice`),
        )
      names.add(column.name)
    })
    if (options.columns) {
      options.key?.forEach((name, k) => {
        if (!names.has(name))
          issues.push(
            issue(`${at}/key/${k}`, 'column', `key column ${name} is not a declared column`),
          )
      })
    }
  })

  const deadLetterTargets = new Set<string>()
  p.nodes.forEach((node, i) => {
    if (node.role !== 'sink' || node.deadLetter === undefined) return
    const at = `/nodes/${i}/deadLetter`
    const target = nodeAt(node.deadLetter)
    if (!target) issues.push(issue(at, 'node', `no node ${JSON.stringify(node.deadLetter)}`))
    else if (target.role !== 'sink')
      issues.push(issue(at, 'role', `dead-letter node ${node.deadLetter} must be a sink`))
    else if (target.id === node.id)
      issues.push(issue(at, 'node', 'a sink cannot be its own dead-letter sink'))
    else if (target.deadLetter !== undefined) {
      issues.push(
        issue(
          at,
          'node',
          `dead-letter node ${target.id} has a dead-letter sink itself; chains are not allowed`,
        ),
      )
    } else {
      deadLetterTargets.add(target.id)
      const fromKind = kinds.get(node.id)
      const toKind = kinds.get(target.id)
      if (fromKind && toKind && !conversionAllowed(fromKind, toKind)) {
        issues.push(
          issue(
            at,
            'kind',
            `sink ${node.id} takes ${fromKind} items and dead-letter sink ${target.id} takes ${toKind}; no conversion`,
          ),
        )
      }
    }
  })

  p.nodes.forEach((node, i) => {
    if (!index.has(node.id) || index.get(node.id) !== i) return
    if (node.role === 'source' && !feeding.has(node.id)) {
      issues.push(issue(`/nodes/${i}`, 'edge', `source ${node.id} has no edge to a sink`))
    }
    if (node.role === 'sink' && !fed.has(node.id) && !deadLetterTargets.has(node.id)) {
      issues.push(
        issue(
          `/nodes/${i}`,
          'edge',
          `sink ${node.id} has no edge from a source and is no dead-letter sink`,
        ),
      )
    }
  })
  return issues
}
