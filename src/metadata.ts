/**
 * What the store records about each array, and the store's format stamp. Encoded with
 * msgpackr; the native engine prepends the array id and the serial of the last change.
 */
import { Packr } from 'msgpackr'
import { type DType, checkDType } from './dtype'
import { FormatError } from './errors'

/** The one msgpack codec of records (attrs are validated with it too: src/attrs.ts). */
export const packr = new Packr({ useRecords: false, mapsAsObjects: true })

export const FORMAT_NAME = 'txarray'
// 2: array records carry rows and row size in their header (append rebase).
// 3: every block value is a header page (magic, length, CRC32C) then the data, page-aligned
//    in the data file and zero-filled to whole pages (docs/format.md).
//    Commit log entries carry names, lengths and time (watch()); a segments database.
export const FORMAT_VERSION = 3

export interface ArrayMeta {
  dtype: DType
  shape: number[]
  blockBytes: number
  attrs: Record<string, unknown>
  created: number
}

export function encodeMeta(meta: ArrayMeta): Uint8Array {
  return packr.pack(meta)
}

export function decodeMeta(name: string, body: Uint8Array): ArrayMeta {
  let raw: unknown
  try {
    raw = packr.unpack(body)
  } catch (e) {
    throw new FormatError(`record of array '${name}' cannot be decoded: ${(e as Error).message}`)
  }
  const m = raw as Partial<ArrayMeta>
  if (!m || typeof m !== 'object' || !Array.isArray(m.shape) || typeof m.blockBytes !== 'number') {
    throw new FormatError(`record of array '${name}' is damaged`)
  }
  return { dtype: checkDType(m.dtype), shape: m.shape, blockBytes: m.blockBytes, attrs: m.attrs ?? {}, created: m.created ?? 0 }
}

export function encodeFormat(): Uint8Array {
  return packr.pack({ name: FORMAT_NAME, version: FORMAT_VERSION })
}

/** Throws FormatError unless `bytes` is a format stamp this version can read. */
export function checkFormat(bytes: Uint8Array): void {
  let stamp: { name?: unknown; version?: unknown }
  try {
    stamp = packr.unpack(bytes)
  } catch {
    throw new FormatError('the store has a damaged format stamp')
  }
  if (stamp?.name !== FORMAT_NAME) throw new FormatError('the path holds an LMDB store that is not a txarray store')
  if (stamp.version !== FORMAT_VERSION) {
    const older = typeof stamp.version === 'number' && stamp.version < FORMAT_VERSION
    throw new FormatError(`store format version ${String(stamp.version)} is not supported (this txarray reads version ${FORMAT_VERSION}). ` +
      (older
        ? 'To convert it, open it with the txarray release that wrote it, read each array out (read(), views() or an export) ' +
          'and write it into a new store created by this release (create() and append()/write(), or an import).'
        : 'It was written by a newer txarray: open it with that release.'))
  }
}
