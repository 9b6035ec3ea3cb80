// Cuts a block fetch off mid-way, for remote-lazy.test.ts: holds an exclusive lock on the
// store's blocks table (so a fetch that arrives waits inside the server), prints "locked",
// waits until a fetch waits for the lock, terminates that fetch's backend (its client sees
// the connection drop mid-statement), prints "cut", and ends its transaction.
// Usage: fetch-cutter.child.ts <connection string> <schema>
import { Client } from 'pg'

async function main(url: string, schema: string): Promise<void> {
  const c = new Client(url)
  await c.connect()
  await c.query('BEGIN')
  await c.query(`LOCK TABLE ${schema}.blocks IN ACCESS EXCLUSIVE MODE`)
  console.log('locked')
  const deadline = Date.now() + 30_000
  for (;;) {
    // The fetch waits for the lock while its statement is parsed (pg_stat_activity still
    // shows the connection's previous statement then): found by its ungranted lock.
    const { rows } = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE relation = '${schema}.blocks'::regclass AND NOT granted`,
    )
    if (rows.length > 0) {
      await c.query('SELECT pg_terminate_backend($1)', [rows[0].pid])
      break
    }
    if (Date.now() > deadline) {
      throw new Error('no fetch came')
    }
    await new Promise((r) => setTimeout(r, 5))
  }
  console.log('cut')
  await c.query('ROLLBACK')
  await c.end()
}

if (process.env.TXA_CHILD) {
  main(process.argv[2], process.argv[3]).then(() => process.exit(0), (e) => {
    console.error(e)
    process.exit(1)
  })
}
