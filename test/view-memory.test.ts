// A view far larger than the RAM budget (cacheBytes) can be scanned end to end: loaded
// clean pages are evicted as the scan moves on, so the process's memory stays bounded.
// Measured in a child process that creates the array and scans it, so that its RSS is
// nobody else's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { runChild } from './helpers/child'
import { tempDir } from './helpers/tmp'

const MiB = 2 ** 20

test('scanning a view 8x larger than cacheBytes: correct sum, peak RSS under cacheBytes + 256 MiB, pages evicted', () => {
  const cacheMiB = 64
  const arrayMiB = 512
  const out = runChild('view.child.ts', ['scan', tempDir(), String(cacheMiB), String(arrayMiB), '16'])
  const r = JSON.parse(out.trim().split('\n').at(-1)!)
  const info = `peak RSS fill ${(r.peakFill / MiB).toFixed(0)} MiB, scan ${(r.peakScan / MiB).toFixed(0)} MiB; ` +
    `at the end anon ${(r.end.RssAnon / MiB).toFixed(0)} MiB, file ${(r.end.RssFile / MiB).toFixed(0)} MiB; ` +
    `scan ${r.scanMs} ms; evicted ${(r.stats.evictedBytes / MiB).toFixed(0)} MiB`
  assert.is(r.length, (arrayMiB * MiB) / 8)
  assert.is(r.sum, r.expected, 'the sum of every element')
  assert.is(r.stats.cacheBytes, cacheMiB * MiB)
  assert.ok(r.stats.evictedBytes > 0, `clean pages were evicted (${info})`)
  assert.ok(r.stats.cachedBytes <= cacheMiB * MiB, `loaded bytes within the budget at the end: ${r.stats.cachedBytes} (${info})`)
  const limit = (cacheMiB + 256) * MiB
  assert.ok(r.peakFill < limit, `RSS while filling stays under cacheBytes + 256 MiB (${info})`)
  assert.ok(r.peakScan < limit, `RSS while scanning stays under cacheBytes + 256 MiB (${info})`)
  assert.ok(r.end.VmHWM < limit, `peak RSS (VmHWM) under cacheBytes + 256 MiB (${info}; VmHWM ${(r.end.VmHWM / MiB).toFixed(0)} MiB)`)
})

test('dirty pages are never evicted: writing through a view far beyond cacheBytes, then commit() or abort()', () => {
  const dir = tempDir()
  const store = open(dir, { cacheBytes: MiB, sync: false })
  const n = (16 * MiB) / 4
  const a = store.create<'int32'>('w', { dtype: 'int32', shape: [n], blockBytes: 4096 })
  store.commit()
  const v = a.view()
  for (let i = 0; i < n; i++) v[i] = i ^ 0x5555
  assert.ok(store.stats().cachedBytes >= 16 * MiB, 'all 16 MiB of dirty pages stay loaded, over the budget')
  for (let i = 0; i < n; i += 999) if (v[i] !== (i ^ 0x5555)) assert.unreachable(`element ${i} is ${v[i]}`)
  store.commit()
  let sum = 0
  for (let i = 0; i < n; i++) sum += v[i] - (i ^ 0x5555)
  assert.is(sum, 0, 'after commit, reloading evicted clean pages from the store')
  assert.ok(store.stats().cachedBytes <= 2 * MiB, `back within the budget once clean: ${store.stats().cachedBytes}`)
  for (let i = 0; i < n; i++) v[i] = -1
  store.abort()
  for (let i = 0; i < n; i += 777) if (v[i] !== (i ^ 0x5555)) assert.unreachable(`after abort, element ${i} is ${v[i]}`)
  store.close()
  const again = open(dir, { cacheBytes: MiB })
  const b = again.array('w', 'int32').read().data
  for (let i = 0; i < n; i++) if (b[i] !== (i ^ 0x5555)) assert.unreachable(`after reopen, element ${i} is ${b[i]}`)
  again.close()
})

test('cacheBytes is the budget stats() reports; loaded bytes grow as a view is touched', () => {
  const store = open(tempDir(), { cacheBytes: 8 * MiB })
  assert.is(store.stats().cacheBytes, 8 * MiB)
  assert.is(store.stats().cachedBytes, 0)
  const a = store.create<'uint8'>('x', { dtype: 'uint8', shape: [4 * MiB], blockBytes: 65536 })
  a.view().fill(1)
  assert.ok(store.stats().cachedBytes >= 4 * MiB)
  assert.is(store.stats().evictedBytes, 0)
  store.close()
})

test.run()
