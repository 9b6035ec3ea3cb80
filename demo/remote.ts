/**
 * Two machines sharing arrays through PostgreSQL: npx tsx demo/remote.ts postgres://user@host/db
 *
 * "Machine" A and machine B are two handles with caches of their own (here two temporary
 * directories of one process; on real machines, the same code with the same connection
 * string). A streams rows; B follows with watch(), sees each commit once, and reads the
 * new rows from its own cache; both write one block at once, and one of them retries.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ConflictError, open, slice } from '../src/index'

async function main(url: string): Promise<void> {
  const schema = `demo_${process.pid}`  // one store per run of the demo
  const cacheA = fs.mkdtempSync(path.join(os.tmpdir(), 'txarray-demo-a-'))
  const cacheB = fs.mkdtempSync(path.join(os.tmpdir(), 'txarray-demo-b-'))
  const a = open(cacheA, { remote: url, remoteSchema: schema })
  const b = open(cacheB, { remote: url, remoteSchema: schema })

  const sensor = a.create('sensor', { dtype: 'float32', shape: [0, 4] })
  a.commit()

  // B follows A's commits: each once, in order, with the rows it appended.
  const follower = (async () => {
    let seen = 0
    for await (const e of b.watch({ arrays: ['sensor'], keepAlive: true })) {
      const rows = e.arrays.sensor.appended
      if (!rows) continue
      b.refresh()
      const { data } = b.array('sensor', 'float32').read([slice(...rows), null])
      console.log(`B: commit ${e.serial} appended rows ${rows[0]}..${rows[1] - 1}, first value ${data[0]}`)
      if (++seen === 3) break
    }
  })()
  for (let i = 0; i < 3; i++) {
    sensor.append(new Float32Array(8).fill(i))   // 2 rows of 4 channels
    a.commit()                                   // one PostgreSQL transaction
  }
  await follower

  // Both machines change row 0 (the same block): the second commit conflicts and is retried.
  b.array('sensor', 'float32').write([0, null], 7)
  sensor.write([0, null], 5)
  a.commit()
  try {
    b.commit()
  } catch (e) {
    if (!(e instanceof ConflictError)) throw e
    console.log(`B: ${e.message}`)
    b.abort()
  }
  b.transact((s) => s.array('sensor', 'float32').write([0, 0], 9))
  await a.refreshAsync()                        // the catch-up runs off this thread
  console.log(`A: row 0 is now ${Array.from(sensor.read([0, null]).data)}`)

  a.close()
  b.close()
  fs.rmSync(cacheA, { recursive: true, force: true })
  fs.rmSync(cacheB, { recursive: true, force: true })
}

const url = process.argv[2]
if (!url) {
  console.error('usage: npx tsx demo/remote.ts postgres://user@host:port/database')
  process.exit(2)
}
main(url).catch((e) => {
  console.error(e)
  process.exit(1)
})
