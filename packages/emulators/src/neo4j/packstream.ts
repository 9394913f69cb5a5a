/**
 * PackStream v1 (Bolt 5.x), big-endian. Decoded values: integers are `bigint`, floats are
 * `number`, bytes are `Uint8Array`, maps are plain objects, structures are `Struct`.
 * Keeping integers and floats apart matters: Cypher treats `LIMIT 10.0` differently from
 * `LIMIT 10`, and the driver sends every JS number as a float.
 */

export class Struct {
  constructor(
    readonly signature: number,
    readonly fields: Value[],
  ) {}
}

export type Value =
  | null
  | boolean
  | bigint
  | number
  | string
  | Uint8Array
  | Value[]
  | Struct
  | { [key: string]: Value }

export function isMap(value: Value | undefined): value is { [key: string]: Value } {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof Struct)
  )
}

const INT64_MIN = -(1n << 63n)
const INT64_MAX = (1n << 63n) - 1n

export class PackStreamError extends Error {}

export class Decoder {
  private offset = 0
  private readonly view: DataView

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get done(): boolean {
    return this.offset >= this.bytes.byteLength
  }

  private need(n: number): void {
    if (this.offset + n > this.bytes.byteLength)
      throw new PackStreamError('truncated PackStream value')
  }

  private u8(): number {
    this.need(1)
    return this.bytes[this.offset++]!
  }

  private u16(): number {
    this.need(2)
    const v = this.view.getUint16(this.offset)
    this.offset += 2
    return v
  }

  private u32(): number {
    this.need(4)
    const v = this.view.getUint32(this.offset)
    this.offset += 4
    return v
  }

  private string(length: number): string {
    this.need(length)
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.offset, length).toString(
      'utf8',
    )
    this.offset += length
    return s
  }

  private list(length: number): Value[] {
    const out: Value[] = new Array(length)
    for (let i = 0; i < length; i++) out[i] = this.read()
    return out
  }

  private map(length: number): { [key: string]: Value } {
    const out: { [key: string]: Value } = {}
    for (let i = 0; i < length; i++) {
      const key = this.read()
      if (typeof key !== 'string') throw new PackStreamError('map key is not a string')
      out[key] = this.read()
    }
    return out
  }

  private struct(size: number): Struct {
    const signature = this.u8()
    return new Struct(signature, this.list(size))
  }

  read(): Value {
    const marker = this.u8()
    if (marker < 0x80) return BigInt(marker)
    if (marker >= 0xf0) return BigInt(marker - 0x100)
    const high = marker & 0xf0
    const low = marker & 0x0f
    if (high === 0x80) return this.string(low)
    if (high === 0x90) return this.list(low)
    if (high === 0xa0) return this.map(low)
    if (high === 0xb0) return this.struct(low)
    switch (marker) {
      case 0xc0:
        return null
      case 0xc1: {
        this.need(8)
        const v = this.view.getFloat64(this.offset)
        this.offset += 8
        return v
      }
      case 0xc2:
        return false
      case 0xc3:
        return true
      case 0xc8: {
        this.need(1)
        return BigInt(this.view.getInt8(this.offset++))
      }
      case 0xc9: {
        this.need(2)
        const v = this.view.getInt16(this.offset)
        this.offset += 2
        return BigInt(v)
      }
      case 0xca: {
        this.need(4)
        const v = this.view.getInt32(this.offset)
        this.offset += 4
        return BigInt(v)
      }
      case 0xcb: {
        this.need(8)
        const v = this.view.getBigInt64(this.offset)
        this.offset += 8
        return v
      }
      case 0xcc:
      case 0xcd:
      case 0xce: {
        const n = marker === 0xcc ? this.u8() : marker === 0xcd ? this.u16() : this.u32()
        this.need(n)
        const v = this.bytes.slice(this.offset, this.offset + n)
        this.offset += n
        return v
      }
      case 0xd0:
        return this.string(this.u8())
      case 0xd1:
        return this.string(this.u16())
      case 0xd2:
        return this.string(this.u32())
      case 0xd4:
        return this.list(this.u8())
      case 0xd5:
        return this.list(this.u16())
      case 0xd6:
        return this.list(this.u32())
      case 0xd8:
        return this.map(this.u8())
      case 0xd9:
        return this.map(this.u16())
      case 0xda:
        return this.map(this.u32())
      default:
        throw new PackStreamError(`unknown PackStream marker 0x${marker.toString(16)}`)
    }
  }
}

export class Encoder {
  private buffer = Buffer.allocUnsafe(4096)
  private offset = 0

  private ensure(n: number): void {
    if (this.offset + n <= this.buffer.length) return
    let size = this.buffer.length * 2
    while (size < this.offset + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buffer.copy(next, 0, 0, this.offset)
    this.buffer = next
  }

  private u8(v: number): void {
    this.ensure(1)
    this.buffer[this.offset++] = v
  }

  private header(length: number, tiny: number, m8: number, m16: number, m32: number): void {
    if (length < 16 && tiny >= 0) this.u8(tiny | length)
    else if (length < 0x100) {
      this.ensure(2)
      this.buffer[this.offset++] = m8
      this.buffer[this.offset++] = length
    } else if (length < 0x10000) {
      this.ensure(3)
      this.buffer[this.offset++] = m16
      this.buffer.writeUInt16BE(length, this.offset)
      this.offset += 2
    } else {
      this.ensure(5)
      this.buffer[this.offset++] = m32
      this.buffer.writeUInt32BE(length, this.offset)
      this.offset += 4
    }
  }

  int(v: bigint): void {
    if (v < INT64_MIN || v > INT64_MAX) throw new PackStreamError('integer out of int64 range')
    if (v >= -16n && v < 128n) {
      this.u8(Number(v) & 0xff)
    } else if (v >= -128n && v < 128n) {
      this.ensure(2)
      this.buffer[this.offset++] = 0xc8
      this.buffer.writeInt8(Number(v), this.offset++)
    } else if (v >= -32768n && v < 32768n) {
      this.ensure(3)
      this.buffer[this.offset++] = 0xc9
      this.buffer.writeInt16BE(Number(v), this.offset)
      this.offset += 2
    } else if (v >= -2147483648n && v < 2147483648n) {
      this.ensure(5)
      this.buffer[this.offset++] = 0xca
      this.buffer.writeInt32BE(Number(v), this.offset)
      this.offset += 4
    } else {
      this.ensure(9)
      this.buffer[this.offset++] = 0xcb
      this.buffer.writeBigInt64BE(v, this.offset)
      this.offset += 8
    }
  }

  write(value: Value): void {
    if (value === null || value === undefined) {
      this.u8(0xc0)
      return
    }
    switch (typeof value) {
      case 'boolean':
        this.u8(value ? 0xc3 : 0xc2)
        return
      case 'bigint':
        this.int(value)
        return
      case 'number':
        this.ensure(9)
        this.buffer[this.offset++] = 0xc1
        this.buffer.writeDoubleBE(value, this.offset)
        this.offset += 8
        return
      case 'string': {
        const length = Buffer.byteLength(value)
        this.header(length, 0x80, 0xd0, 0xd1, 0xd2)
        this.ensure(length)
        this.buffer.write(value, this.offset, 'utf8')
        this.offset += length
        return
      }
    }
    if (value instanceof Uint8Array) {
      this.header(value.byteLength, -1, 0xcc, 0xcd, 0xce)
      this.ensure(value.byteLength)
      this.buffer.set(value, this.offset)
      this.offset += value.byteLength
      return
    }
    if (Array.isArray(value)) {
      this.header(value.length, 0x90, 0xd4, 0xd5, 0xd6)
      for (const item of value) this.write(item)
      return
    }
    if (value instanceof Struct) {
      this.u8(0xb0 | value.fields.length)
      this.u8(value.signature)
      for (const field of value.fields) this.write(field)
      return
    }
    const keys = Object.keys(value).filter((k) => value[k] !== undefined)
    this.header(keys.length, 0xa0, 0xd8, 0xd9, 0xda)
    for (const key of keys) {
      this.write(key)
      this.write(value[key]!)
    }
  }

  /** The encoded bytes so far; resets the encoder. */
  take(): Buffer {
    const out = Buffer.from(this.buffer.subarray(0, this.offset))
    this.offset = 0
    return out
  }
}

/** Frame one encoded message in chunks of at most 65535 bytes, ending with a 00 00 chunk. */
export function chunkMessage(message: Buffer): Buffer {
  const chunks = Math.max(1, Math.ceil(message.length / 0xffff))
  const out = Buffer.allocUnsafe(message.length + chunks * 2 + 2)
  let at = 0
  for (let from = 0; from < message.length; from += 0xffff) {
    const size = Math.min(0xffff, message.length - from)
    out.writeUInt16BE(size, at)
    message.copy(out, at + 2, from, from + size)
    at += 2 + size
  }
  out.writeUInt16BE(0, at)
  return out.subarray(0, at + 2)
}
