import { testPostgres } from '../../test/helpers/postgres'

/**
 * The PostgreSQL server a remote bench talks to: `given` (a --url / --pgurl option) when
 * set, else a fresh database of the tests' throwaway cluster (fsync=off). Throws with the
 * reason when neither is at hand.
 */
export async function benchPostgresUrl(given: string | undefined): Promise<string> {
  if (given) return given
  const found = testPostgres()
  if ('skipped' in found) throw new Error(found.skipped)
  return found.server.freshDatabase()
}
