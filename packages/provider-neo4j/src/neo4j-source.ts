import {
  type GraphData,
  type GraphEdge,
  type GraphNode,
  type GraphValue,
  ProviderError,
  type ReadItem,
  type ReadOptions,
  raceAbort,
  throwIfAborted,
} from '@nvisy/provider-core'
import neo4j, { type Driver, type Node, type Relationship } from 'neo4j-driver'
import { readFirstPageQuery, readPageAfterQuery, readRelationshipsQuery } from './neo4j-cypher.js'
import type { Neo4jContext, Neo4jStream } from './neo4j-schemas.js'
import { fromNeo4j, keyText, keyValue } from './neo4j-values.js'

export const DEFAULT_KEY_PROPERTY = 'id'
export const DEFAULT_PAGE_SIZE = 1000

export interface Neo4jTarget {
  driver: Driver
  database: string | undefined
}

function properties(raw: Record<string, unknown>): Record<string, GraphValue> {
  const out: Record<string, GraphValue> = {}
  for (const key of Object.keys(raw)) out[key] = fromNeo4j(raw[key])
  return out
}

interface Page {
  items: ReadItem<Neo4jContext>[]
  size: number
  last: unknown
}

/**
 * Keyset pagination over one label: `WHERE n.key > $after ORDER BY n.key LIMIT $limit`, then
 * the outgoing relationships of the page's nodes, in the same read transaction. Each item is
 * one node with its outgoing edges; its context is the node's key, so resume is exact.
 */
export async function* readGraph(
  target: Neo4jTarget,
  stream: Neo4jStream,
  options: ReadOptions<Neo4jContext>,
): AsyncGenerator<ReadItem<Neo4jContext>> {
  const key = stream.keyProperty ?? DEFAULT_KEY_PROPERTY
  const relKey = stream.relationshipKeyProperty ?? DEFAULT_KEY_PROPERTY
  const pageSize = stream.pageSize ?? DEFAULT_PAGE_SIZE
  const types = stream.relationships ?? []
  const firstQuery = readFirstPageQuery(stream.label, key)
  const afterQuery = readPageAfterQuery(stream.label, key)
  const relsQuery = types.length > 0 ? readRelationshipsQuery(stream.label, key, types) : undefined
  let after: unknown = options.after === undefined ? undefined : keyValue(options.after)

  const readPage = async (): Promise<Page> => {
    const session = target.driver.session({
      database: target.database,
      defaultAccessMode: neo4j.session.READ,
      fetchSize: pageSize,
    })
    try {
      return await session.executeRead(async (tx) => {
        const limit = neo4j.int(pageSize)
        const result =
          after === undefined
            ? await tx.run(firstQuery, { limit })
            : await tx.run(afterQuery, { after, limit })
        const nodes = result.records.map((record) => record.get('n') as Node)
        const keys = nodes.map((node) => node.properties[key])
        const edges = new Map<string, GraphEdge[]>()
        if (relsQuery && nodes.length > 0) {
          const rels = await tx.run(relsQuery, { keys })
          for (const record of rels.records) {
            const from = keyText(record.get('nodeKey'))
            const to = keyText(record.get('target'))
            if (!from || !to) continue
            const rel = record.get('r') as Relationship
            const idValue = keyText(rel.properties[relKey])
            const edge: GraphEdge = {
              id: idValue ? idValue.key : rel.elementId,
              type: rel.type,
              from: from.key,
              to: to.key,
              properties: properties(rel.properties),
            }
            const list = edges.get(`${from.type}:${from.key}`)
            if (list) list.push(edge)
            else edges.set(`${from.type}:${from.key}`, [edge])
          }
        }
        const items = nodes.map((node): ReadItem<Neo4jContext> => {
          const k = keyText(node.properties[key])
          if (!k) {
            throw new ProviderError({
              kind: 'data',
              message: `node ${node.elementId} has a ${key} that is not a string or a number; keys must be strings or integers`,
            })
          }
          const graphNode: GraphNode = {
            id: k.key,
            labels: [...node.labels],
            properties: properties(node.properties),
          }
          const data: GraphData = {
            kind: 'graph',
            nodes: [graphNode],
            edges: edges.get(`${k.type}:${k.key}`) ?? [],
          }
          return { data, context: { key: k.key, type: k.type } }
        })
        return { items, size: nodes.length, last: keys[keys.length - 1] }
      })
    } finally {
      await session.close()
    }
  }

  for (;;) {
    throwIfAborted(options.signal)
    const page = await raceAbort(readPage(), options.signal)
    for (const item of page.items) {
      throwIfAborted(options.signal)
      yield item
    }
    if (page.size < pageSize) return
    after = page.last
  }
}
