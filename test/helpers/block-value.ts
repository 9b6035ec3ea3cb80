/**
 * Reads a stored block value (store format 3, docs/format.md) from its raw bytes, with an
 * independent CRC32C, so tests check the layout the documentation promises.
 */

/** CRC32C (Castagnoli, reflected), bit by bit: slow and obviously right. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0
  for (const b of bytes) {
    c ^= b
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  }
  return ~c >>> 0
}

export interface BlockValue {
  magic: string
  version: number
  dataOffset: number
  blockBytes: number
  dataLength: number
  arrayId: bigint
  blockIndex: bigint
  /** The commit that wrote the block. */
  serial: bigint
  checksum: number
  /** The stored data bytes: dataLength bytes, then zeros to a whole number of pages. */
  stored: Buffer
}

export const HEADER_CHECKSUM_AT = 48

export function parseBlockValue(value: Buffer): BlockValue {
  const dataOffset = value.readUInt32LE(8)
  return {
    magic: value.subarray(0, 4).toString('latin1'),
    version: value.readUInt16LE(4),
    dataOffset,
    blockBytes: value.readUInt32LE(12),
    dataLength: Number(value.readBigUInt64LE(16)),
    arrayId: value.readBigUInt64LE(24),
    blockIndex: value.readBigUInt64LE(32),
    serial: value.readBigUInt64LE(40),
    checksum: value.readUInt32LE(HEADER_CHECKSUM_AT),
    stored: value.subarray(dataOffset),
  }
}

/** The checksum a value should carry: CRC32C of its stored data, continued over header bytes 0..48. */
export function expectedChecksum(value: Buffer): number {
  const v = parseBlockValue(value)
  return crc32c(value.subarray(0, HEADER_CHECKSUM_AT), crc32c(v.stored))
}
