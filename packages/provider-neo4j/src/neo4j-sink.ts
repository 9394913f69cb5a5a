import {
  type Data,
  errorMessage,
  type GraphData,
  type GraphValue,
  ProviderError,
  raceAbort,
  throwIfAborted,
  type WriteFailure,
  type WriteOptions,
  type WriteResult,
} from '@nvisy/provider-core'
import neo4j, { type ManagedTransaction } from 'neo4j-driver'
import {
  isValidName,
  mergeNodesQuery,
  mergeRelationshipsQuery,
  NameError,
  quoteName,
  uniqueConstraintQuery,
} from './neo4j-cypher.js'
import { kindOfCode } from './neo4j-errors.js'
import type { Neo4jSinkStream } from './neo4j-schemas.js'
import { DEFAULT_KEY_PROPERTY, type Neo4jTarget } from './neo4j-source.js'
import { keyText, toNeo4j, toNeo4jProperties, ValueError } from './neo4j-values.js'

interface PreparedNode {
  id: string
  labels: string[]
  key: unknown
  props: Record<string, unknown>
}

interface PreparedEdge {
  type: string
  from: string
  to: string
  id: unknown
  props: Record<string, unknown>
}

interface PreparedItem {
  index: number
  nodes: PreparedNode[]
  edges: PreparedEdge[]
}

/** Thrown inside the write transaction (rolling it back) when edges found no endpoints. */
class MissingEndpoints extends Error {
  constructor(readonly items: Map<number, string>) {
    super('relationship endpoints not found')
  }
}

function dataError(index: number, message: string, cause?: unknown): ProviderError {
  return new ProviderError({
    kind: 'data',
    operation: 'write',
    message: `item ${index}: ${message}`,
    cause,
  })
}

/** The typed key: the property value when it spells the id (keeps integer keys integers), else the id. */
function typedKey(id: string, value: GraphValue | undefined, path: string): unknown {
  if (value !== undefined && value !== null) {
    const text = keyText(value)
    if (text && text.key === id) return toNeo4j(value, path)
  }
  return id
}

function prepare(item: Data, index: number, nodeKey: string, relKey: string): PreparedItem {
  if (item.kind !== 'graph') throw dataError(index, `expected a graph item, got ${item.kind}`)
  const graph = item as GraphData
  if (!Array.isArray(graph.nodes) || !Array.isArray(graph.edges)) {
    throw dataError(index, 'a graph item needs nodes and edges arrays')
  }
  try {
    const nodes = graph.nodes.map((node, i): PreparedNode => {
      const path = `nodes[${i}]`
      if (typeof node?.id !== 'string' || node.id === '')
        throw new ValueError(`${path}.id must be a non-empty string`)
      if (!Array.isArray(node.labels) || node.labels.length === 0) {
        throw new ValueError(`${path} (${JSON.stringify(node.id)}) needs at least one label`)
      }
      for (const label of node.labels) {
        if (typeof label !== 'string' || !isValidName(label)) {
          throw new ValueError(
            `${path}.labels: ${JSON.stringify(label)} is not a valid label (letters, digits, _)`,
          )
        }
      }
      const properties = node.properties ?? {}
      return {
        id: node.id,
        labels: [...new Set(node.labels)].sort(),
        key: typedKey(node.id, properties[nodeKey], `${path}.properties.${nodeKey}`),
        props: toNeo4jProperties(properties, nodeKey, `${path}.properties`),
      }
    })
    const edges = graph.edges.map((edge, i): PreparedEdge => {
      const path = `edges[${i}]`
      for (const field of ['id', 'from', 'to'] as const) {
        if (typeof edge?.[field] !== 'string' || edge[field] === '') {
          throw new ValueError(`${path}.${field} must be a non-empty string`)
        }
      }
      if (typeof edge.type !== 'string' || !isValidName(edge.type)) {
        throw new ValueError(
          `${path}.type: ${JSON.stringify(edge.type)} is not a valid relationship type (letters, digits, _)`,
        )
      }
      const properties = edge.properties ?? {}
      return {
        type: edge.type,
        from: edge.from,
        to: edge.to,
        id: typedKey(edge.id, properties[relKey], `${path}.properties.${relKey}`),
        props: toNeo4jProperties(properties, relKey, `${path}.properties`),
      }
    })
    return { index, nodes, edges }
  } catch (error) {
    if (error instanceof ValueError || error instanceof NameError)
      throw dataError(index, error.message)
    throw error
  }
}

/** True for a server error caused by the data of some item (not by the connection or the query). */
function isItemError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && kindOfCode(code) === 'data'
}

export class Neo4jSink {
  private readonly constrained = new Set<string>()

  constructor(private readonly target: Neo4jTarget) {}

  async write(
    settings: Neo4jSinkStream,
    batch: readonly Data[],
    options: WriteOptions,
  ): Promise<WriteResult> {
    const nodeKey = settings.keyProperty ?? DEFAULT_KEY_PROPERTY
    const relKey = settings.relationshipKeyProperty ?? DEFAULT_KEY_PROPERTY
    // Names in query text are checked once up front: a bad setting fails the batch as config.
    quoteName(nodeKey, 'keyProperty')
    quoteName(relKey, 'relationshipKeyProperty')
    if (settings.endpointLabel !== undefined) quoteName(settings.endpointLabel, 'endpointLabel')

    const failed: WriteFailure[] = []
    let remaining: PreparedItem[] = []
    batch.forEach((item, index) => {
      try {
        remaining.push(prepare(item, index, nodeKey, relKey))
      } catch (error) {
        if (!ProviderError.isInstance(error)) throw error
        failed.push({ index, error })
      }
    })
    if (settings.createConstraints) await this.ensureConstraints(remaining, nodeKey, options.signal)

    while (remaining.length > 0) {
      throwIfAborted(options.signal)
      try {
        await raceAbort(this.writeItems(remaining, settings, nodeKey, relKey), options.signal)
        break
      } catch (error) {
        if (error instanceof MissingEndpoints) {
          for (const [index, message] of error.items)
            failed.push({ index, error: dataError(index, message) })
          remaining = remaining.filter((item) => !error.items.has(item.index))
          continue
        }
        if (!isItemError(error)) throw error
        // A value or constraint the server refused: find the item(s) by writing one at a time.
        for (const item of remaining) {
          throwIfAborted(options.signal)
          try {
            await raceAbort(this.writeItems([item], settings, nodeKey, relKey), options.signal)
          } catch (itemError) {
            if (itemError instanceof MissingEndpoints) {
              failed.push({
                index: item.index,
                error: dataError(item.index, [...itemError.items.values()].join('; ')),
              })
            } else if (isItemError(itemError)) {
              failed.push({
                index: item.index,
                error: new ProviderError({
                  kind: 'data',
                  operation: 'write',
                  code: (itemError as { code?: string }).code,
                  message: `item ${item.index}: neo4j refused it: ${errorMessage(itemError)}`,
                  cause: itemError,
                }),
              })
            } else throw itemError
          }
        }
        break
      }
    }
    failed.sort((a, b) => a.index - b.index)
    return { written: batch.length - failed.length, failed }
  }

  private async ensureConstraints(
    items: PreparedItem[],
    nodeKey: string,
    signal: AbortSignal,
  ): Promise<void> {
    const labels = new Set(items.flatMap((item) => item.nodes.flatMap((node) => node.labels)))
    for (const label of labels) {
      const id = `${label}\u0000${nodeKey}`
      if (this.constrained.has(id)) continue
      const session = this.target.driver.session({ database: this.target.database })
      try {
        await raceAbort(session.run(uniqueConstraintQuery(label, nodeKey)), signal)
      } finally {
        await session.close()
      }
      this.constrained.add(id)
    }
  }

  /** One transaction: node MERGEs grouped by label set, then relationship MERGEs grouped by type and endpoint labels. */
  private async writeItems(
    items: PreparedItem[],
    settings: Neo4jSinkStream,
    nodeKey: string,
    relKey: string,
  ): Promise<void> {
    const nodeGroups = new Map<
      string,
      { labels: string[]; rows: { key: unknown; props: Record<string, unknown> }[] }
    >()
    const batchNodes = new Map<string, PreparedNode>()
    for (const item of items) {
      for (const node of item.nodes) {
        const groupKey = node.labels.join('\u0000')
        let group = nodeGroups.get(groupKey)
        if (!group) {
          group = { labels: node.labels, rows: [] }
          nodeGroups.set(groupKey, group)
        }
        group.rows.push({ key: node.key, props: node.props })
        if (!batchNodes.has(node.id)) batchNodes.set(node.id, node)
      }
    }
    const fallback = settings.endpointLabel === undefined ? [] : [settings.endpointLabel]
    const relGroups = new Map<
      string,
      { type: string; fromLabels: string[]; toLabels: string[]; rows: Record<string, unknown>[] }
    >()
    const owners: { index: number; edge: PreparedEdge }[] = []
    for (const item of items) {
      for (const edge of item.edges) {
        const from = batchNodes.get(edge.from)
        const to = batchNodes.get(edge.to)
        const fromLabels = from?.labels ?? fallback
        const toLabels = to?.labels ?? fallback
        const groupKey = [edge.type, fromLabels.join(':'), toLabels.join(':')].join('\u0000')
        let group = relGroups.get(groupKey)
        if (!group) {
          group = { type: edge.type, fromLabels, toLabels, rows: [] }
          relGroups.set(groupKey, group)
        }
        group.rows.push({
          from: from ? from.key : edge.from,
          to: to ? to.key : edge.to,
          id: edge.id,
          props: edge.props,
          seq: neo4j.int(owners.length),
        })
        owners.push({ index: item.index, edge })
      }
    }
    const session = this.target.driver.session({ database: this.target.database })
    try {
      await session.executeWrite(async (tx: ManagedTransaction) => {
        for (const group of nodeGroups.values()) {
          await tx.run(mergeNodesQuery(group.labels, nodeKey), { rows: group.rows })
        }
        if (owners.length === 0) return
        const seen = new Set<number>()
        for (const group of relGroups.values()) {
          const query = mergeRelationshipsQuery(
            group.type,
            group.fromLabels,
            group.toLabels,
            nodeKey,
            relKey,
          )
          const result = await tx.run(query, { rels: group.rows })
          for (const record of result.records) seen.add(Number(record.get('seq')))
        }
        if (seen.size === owners.length) return
        const missing = new Map<number, string>()
        owners.forEach(({ index, edge }, seq) => {
          if (seen.has(seq) || missing.has(index)) return
          missing.set(
            index,
            `relationship ${JSON.stringify(edge.type)} ${JSON.stringify(edge.from)} -> ${JSON.stringify(edge.to)}: an endpoint node does not exist`,
          )
        })
        throw new MissingEndpoints(missing)
      })
    } finally {
      await session.close()
    }
  }
}
