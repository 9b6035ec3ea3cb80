/**
 * Finds LMDB pages by kind in a data.mdb (LMDB 0.9 layout, 64-bit): a 16-byte header
 * with the page number, flags at byte 10, then lower/upper bounds of the free space (or
 * the page count of an overflow run) at bytes 12..15. Used to damage chosen pages.
 */
export const P_BRANCH = 0x01
export const P_LEAF = 0x02
export const P_OVERFLOW = 0x04
export const P_META = 0x08

/** Byte offsets inside a meta page: magic, version, map size, the main DB record, last page, txnid. */
export const META_FIELDS = {
  flags: 10, magic: 16, version: 20, mapSize: 36, freeRoot: 80, mainDepth: 94, mainBranchPages: 96,
  mainEntries: 120, mainRootLow: 128, mainRootHigh: 132, lastPageLow: 136, lastPageHigh: 140, txnid: 144,
}

export interface Page {
  pgno: number
  flags: number
  /** Bytes 14..15: start of the nodes of a branch or leaf page. */
  upper: number
}

/** Every page of the file by its header; the continuation pages of an overflow run are skipped. */
export function pagesOf(file: Buffer, pageBytes = 4096): Page[] {
  const pages: Page[] = []
  for (let pgno = 0; (pgno + 1) * pageBytes <= file.length; pgno++) {
    const at = pgno * pageBytes
    const flags = file.readUInt16LE(at + 10)
    pages.push({ pgno, flags, upper: file.readUInt16LE(at + 14) })
    if (flags & P_OVERFLOW) pgno += Math.max(1, file.readUInt32LE(at + 12)) - 1
  }
  return pages
}
