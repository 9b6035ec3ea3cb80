/**
 * Blocks fetched on demand (docs/scale-out.md, "Blocks fetched on demand"): the bytes of
 * exact block versions, read from the server in one round trip. A version is addressed by
 * (array id, block index, serial): immutable, so any later read of it gets the same bytes.
 */
import type { ClientBase, QueryConfig } from 'pg'
import { checkSchemaName, DEFAULT_SCHEMA } from './schema'

/** One block version to fetch: what a stub of the cache says (its serial and length). */
export interface WantedBlock {
  index: number
  serial: number
}

/** A fetched version's bytes (trailing zeros trimmed, as the server holds them). */
export interface FetchedBlock extends WantedBlock {
  data: Buffer
}

/**
 * Reads versions `wanted` of blocks of array `arrayId`, in the order asked. A version the
 * server no longer holds (collected by retention: only superseded versions are) comes back
 * with `data` null.
 */
export async function fetchBlocks(
  client: ClientBase, arrayId: number, wanted: readonly WantedBlock[], schema = DEFAULT_SCHEMA,
): Promise<{ index: number; serial: number; data: Buffer | null }[]> {
  const found = await fetchVersions(client, wanted.map((w) => ({ arrayId, ...w })), schema)
  return found.map(({ index, serial, data }) => ({ index, serial, data }))
}

/** fetchBlocks() for versions of any arrays. */
export async function fetchVersions(
  client: ClientBase, wanted: readonly (WantedBlock & { arrayId: number })[], schema = DEFAULT_SCHEMA,
): Promise<(WantedBlock & { arrayId: number; data: Buffer | null })[]> {
  const s = checkSchemaName(schema)
  // Text results, as catch-up reads them: bytea arrives hex-encoded (two bytes on the wire
  // per byte). pg's binary result mode cannot serve: it decodes every field as UTF-8 text.
  const query: QueryConfig = {
    name: `${s}_fetch_blocks`,
    text: `SELECT b.data FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS w(a, i, s, n)
             LEFT JOIN ${s}.blocks b ON b.array_id = w.a AND b.block_index = w.i AND b.serial = w.s
            ORDER BY w.n`,
    values: [wanted.map((w) => w.arrayId), wanted.map((w) => w.index), wanted.map((w) => w.serial)],
  }
  const { rows } = await client.query<{ data: Buffer | null }>(query)
  return wanted.map((w, i) => ({ ...w, data: rows[i]?.data ?? null }))
}
