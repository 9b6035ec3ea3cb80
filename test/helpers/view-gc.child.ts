// Child process script for view-memory.test.ts, run through helpers/child.ts (a fresh
// process, so that no earlier test has shaped the heap's GC limits):
//   <dir>  creates a 32 MiB float64 array (never written: zeros), makes 512 views of 4 MiB
//       with views() (64 passes of 8), and prints JSON with the elements they hold and the
//       major GCs that started while they were made
import { constants, PerformanceObserver, performance } from 'node:perf_hooks'
import { open } from '../../src/index'

async function main(dir: string): Promise<void> {
  const s = open(dir)
  const a = s.create('a', { dtype: 'float64', shape: [4 << 20] })
  s.commit()
  const majors: number[] = [] // start times
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors.push(e.startTime)
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  await new Promise((resolve) => setImmediate(resolve))
  const t0 = performance.now()
  let elements = 0
  for (let pass = 0; pass < 64; pass++) for (const v of a.views(1 << 19)) elements += v.length
  const t1 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, 50)) // gc entries are delivered asynchronously
  observer.disconnect()
  s.close()
  console.log(JSON.stringify({ elements, majorsDuring: majors.filter((t) => t >= t0 && t <= t1).length, majorsAll: majors.length }))
}

if (process.env.TXA_CHILD) void main(process.argv[2])
