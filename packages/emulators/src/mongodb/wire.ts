// MongoDB wire protocol framing: OP_MSG both ways, OP_QUERY in and OP_REPLY out (the
// legacy handshake). Every message starts with four little-endian int32s:
// messageLength, requestID, responseTo, opCode.
import { BSON, type Document } from 'bson'

export const OP_REPLY = 1
export const OP_QUERY = 2004
export const OP_COMPRESSED = 2012
export const OP_MSG = 2013

const CHECKSUM_PRESENT = 1
const MORE_TO_COME = 2

/** Stored values keep their BSON types: Int32, Double and Long are not turned into numbers. */
export const DESERIALIZE_OPTIONS = { promoteValues: false, promoteLongs: false } as const

export interface Request {
  requestId: number
  opCode: number
  /** The command document, with kind-1 sequences merged in under their identifiers. */
  command: Document
  /** OP_MSG moreToCome: the client expects no reply. */
  noReply: boolean
}

export class ProtocolError extends Error {}

/** Parse one complete message (header included). */
export function parseMessage(message: Buffer): Request {
  const requestId = message.readInt32LE(4)
  const opCode = message.readInt32LE(12)
  if (opCode === OP_MSG) {
    const flags = message.readUInt32LE(16)
    const end = message.length - (flags & CHECKSUM_PRESENT ? 4 : 0)
    let pos = 20
    let command: Document | undefined
    const sequences: [string, Document[]][] = []
    while (pos < end) {
      const kind = message[pos++]
      const size = message.readInt32LE(pos)
      if (kind === 0) {
        command = BSON.deserialize(message.subarray(pos, pos + size), DESERIALIZE_OPTIONS)
        pos += size
      } else if (kind === 1) {
        const sectionEnd = pos + size
        let cursor = pos + 4
        const nameEnd = message.indexOf(0, cursor)
        const identifier = message.toString('utf8', cursor, nameEnd)
        cursor = nameEnd + 1
        const documents: Document[] = []
        while (cursor < sectionEnd) {
          const docSize = message.readInt32LE(cursor)
          documents.push(
            BSON.deserialize(message.subarray(cursor, cursor + docSize), DESERIALIZE_OPTIONS),
          )
          cursor += docSize
        }
        sequences.push([identifier, documents])
        pos = sectionEnd
      } else {
        throw new ProtocolError(`unknown OP_MSG section kind ${kind}`)
      }
    }
    if (!command) throw new ProtocolError('OP_MSG without a body section')
    for (const [identifier, documents] of sequences) command[identifier] = documents
    return { requestId, opCode, command, noReply: (flags & MORE_TO_COME) !== 0 }
  }
  if (opCode === OP_QUERY) {
    let pos = 20
    const nameEnd = message.indexOf(0, pos)
    const collection = message.toString('utf8', pos, nameEnd)
    pos = nameEnd + 1 + 8 // numberToSkip, numberToReturn
    const size = message.readInt32LE(pos)
    let command = BSON.deserialize(message.subarray(pos, pos + size), DESERIALIZE_OPTIONS)
    // A wrapped query: { $query: {...}, $readPreference: ... }
    if (command.$query && typeof command.$query === 'object') command = command.$query as Document
    if (command.$db === undefined) command.$db = collection.split('.')[0]
    return { requestId, opCode, command, noReply: false }
  }
  throw new ProtocolError(`unsupported opCode ${opCode}`)
}

let nextRequestId = 1

/** Encode a reply to a request: OP_MSG for OP_MSG, OP_REPLY for OP_QUERY. */
export function encodeReply(request: Request, reply: Document): Buffer {
  const body = BSON.serialize(reply)
  const requestId = nextRequestId++ & 0x7fffffff
  if (request.opCode === OP_QUERY) {
    const header = Buffer.alloc(36)
    header.writeInt32LE(36 + body.length, 0)
    header.writeInt32LE(requestId, 4)
    header.writeInt32LE(request.requestId, 8)
    header.writeInt32LE(OP_REPLY, 12)
    header.writeInt32LE(0, 16) // responseFlags
    header.writeBigInt64LE(0n, 20) // cursorID
    header.writeInt32LE(0, 28) // startingFrom
    header.writeInt32LE(1, 32) // numberReturned
    return Buffer.concat([header, body])
  }
  const header = Buffer.alloc(21)
  header.writeInt32LE(21 + body.length, 0)
  header.writeInt32LE(requestId, 4)
  header.writeInt32LE(request.requestId, 8)
  header.writeInt32LE(OP_MSG, 12)
  header.writeUInt32LE(0, 16)
  header[20] = 0
  return Buffer.concat([header, body])
}
