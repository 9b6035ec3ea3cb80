// faultMode() names the fault service that serves views; TXARRAY_FAULT_MODE forces one
// (test/run.mjs runs every suite once per mode, and this checks the force took effect).
import { execFileSync } from 'node:child_process'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { faultMode, open } from '../src/index'
import { tempDir } from './helpers/tmp'

/** The kernel's page size, as getconf reports it. */
function systemPageBytes(): number {
  return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim())
}

test('faultMode().mode is the mode TXARRAY_FAULT_MODE forces (else uffd where available)', () => {
  const info = faultMode()
  const forced = process.env.TXARRAY_FAULT_MODE
  if (forced === 'uffd' || forced === 'sigsegv') {
    assert.is(info.mode, forced)
  } else {
    assert.is(info.mode, info.userfaultfd ? 'uffd' : 'sigsegv')
  }
  assert.is(info.error, undefined, 'no complaint about the environment')
  assert.is(info.pageBytes, systemPageBytes())
})

test('faultMode().writeProtect: per block under sigsegv; under uffd sync unless TXARRAY_WP_MODE=async', () => {
  const info = faultMode()
  const expected = info.mode === 'sigsegv' ? 'per-block' : process.env.TXARRAY_WP_MODE === 'async' ? 'async' : 'sync'
  assert.is(info.writeProtect, expected)
})

test('views work in the active mode: a touched view loads data, a write through it is tracked', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'uint16'>('x', { dtype: 'uint16', shape: [0], blockBytes: 4096 })
  a.append(Uint16Array.from({ length: 10000 }, (_, i) => i))
  store.commit()
  store.close()
  const again = open(dir)
  const v = again.array('x', 'uint16').view()
  assert.is(v[9999], 9999)
  v[5000] = 1
  assert.ok(again.dirty)
  again.close()
})

test.run()
