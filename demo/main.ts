/**
 * The main job, end to end on a local store (demo/data, recreated each run):
 *   1. a sensor stream: append 200 000 rows of 16 float32 channels, one commit per
 *      1000-row batch, and report the rate and the bytes written per byte appended;
 *   2. application code changes a region in place and aborts: the change is gone;
 *   3. changes and commits a region: a second handle sees it after refresh();
 *   4. reads random windows and a strided selection;
 *   5. works through a view: a Float32Array over the whole stream, made in O(1), paged in
 *      from the store as it is touched; one write through it commits one block.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { faultMode, open, slice } from '../src/index'

const dir = path.join(__dirname, 'data')
fs.rmSync(dir, { recursive: true, force: true })

const CHANNELS = 16
const BATCH = 1000
const BATCHES = 200

const store = open(dir)
const sensor = store.create('sensor', { dtype: 'float32', shape: [0, CHANNELS], attrs: { unit: 'mV', hz: 1000 } })
store.commit()

// 1. Stream: row r, channel c holds r + c / 100.
const batch = new Float32Array(BATCH * CHANNELS)
const t0 = process.hrtime.bigint()
for (let b = 0; b < BATCHES; b++) {
  for (let i = 0; i < BATCH; i++) {
    for (let c = 0; c < CHANNELS; c++) batch[i * CHANNELS + c] = b * BATCH + i + c / 100
  }
  sensor.append(batch)
  store.commit({ sync: false })
}
store.flush()
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
const appended = BATCH * BATCHES * CHANNELS * 4
const stats = store.stats()
console.log(`appended ${sensor.rows} rows in ${BATCHES} commits: ${(sensor.rows / seconds).toFixed(0)} rows/s, ` +
  `${(appended / seconds / 1e6).toFixed(1)} MB/s, ${(stats.bytesWritten / appended).toFixed(2)} block bytes written per byte appended`)

// 2. Change in place, then abort.
const before = sensor.read([slice(5000, 5003), 0]).data
sensor.write([slice(5000, 5003), 0], new Float32Array([-1, -1, -1]))
console.log('inside the transaction:', [...sensor.read([slice(5000, 5003), 0]).data])
store.abort()
const after = sensor.read([slice(5000, 5003), 0]).data
console.log('after abort:          ', [...after])
if (after.some((v, i) => v !== before[i])) throw new Error('abort did not restore the committed values')

// 3. Commit a change; another handle sees it once it refreshes.
const reader = open(dir)
sensor.write([7, null], 42)
store.commit()
const seenBefore = reader.array('sensor').read([7, 0]).data[0]
reader.refresh()
const seenAfter = reader.array('sensor').read([7, 0]).data[0]
console.log(`reader saw row 7 = ${seenBefore} in its old snapshot, ${seenAfter} after refresh()`)

// 4. Random windows of 16 rows, and every 1000th row of channel 3.
const window = new Float32Array(16 * CHANNELS)
for (let i = 0; i < 1000; i++) {
  const start = Math.floor(Math.random() * (sensor.rows - 16))
  sensor.read([slice(start, start + 16), null], window)
  if (window[CHANNELS] !== start + 1 && start + 1 !== 7) throw new Error(`window at ${start} holds wrong data`)

}
const column = sensor.read([slice(0, null, 1000), 3])
console.log(`1000 random windows read; every 1000th row of channel 3: shape ${column.shape}, first values ${[...column.data.slice(0, 4)]}`)

// 5. A view: no copy, pages load on first touch; writes are tracked per block.
const view = sensor.view()
let sum = 0
for (let r = 0; r < view.length; r += CHANNELS) sum += view[r + 3]
console.log(`view of ${view.length} floats (${faultMode().mode} fault service): channel 3 sums to ${sum.toExponential(6)}`)
const written = store.stats().blocksWritten
view[123_456 * CHANNELS] = -7
store.commit()
console.log(`one write through the view, then commit: ${store.stats().blocksWritten - written} block written, ` +
  `read() sees ${sensor.read([123_456, 0]).data[0]}`)

reader.close()
store.close()
console.log(`after close the view is detached: length ${view.length}`)
console.log('done: store left in', path.relative(process.cwd(), dir))
