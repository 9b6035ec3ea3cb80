// faultMode() names the fault service that serves views; TXARRAY_FAULT_MODE forces one
// (test/run.mjs runs every suite once per mode, and this checks the force took effect).
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { faultMode, open } from '../src/index'
import { tempDir } from './helpers/tmp'

/** The kernel's page size, as getconf reports it. */
function systemPageBytes(): number {
  return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim())
}

/** Whether this process may open a userfaultfd that serves faults taken in system calls. */
function kernelFaultsAllowed(): boolean {
  if (process.getuid?.() === 0) return true
  try {
    if (fs.readFileSync('/proc/sys/vm/unprivileged_userfaultfd', 'utf8').trim() === '1') return true
  } catch {}
  try {
    fs.accessSync('/dev/userfaultfd', fs.constants.R_OK | fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

test('faultMode().mode is the mode TXARRAY_FAULT_MODE forces (else uffd where it serves system calls too)', () => {
  const info = faultMode()
  const forced = process.env.TXARRAY_FAULT_MODE
  if (forced === 'uffd' || forced === 'sigsegv') {
    assert.is(info.mode, forced)
  } else {
    assert.is(info.mode, info.userfaultfd && kernelFaultsAllowed() ? 'uffd' : 'sigsegv')
  }
  assert.is(info.error, undefined, 'no complaint about the environment')
  assert.is(info.pageBytes, systemPageBytes())
})

test('faultMode().systemCalls: true under uffd where the kernel lets it serve system calls, never under sigsegv', () => {
  const info = faultMode()
  assert.is(info.systemCalls, info.mode === 'uffd' && kernelFaultsAllowed())
  const [major, minor] = execFileSync('uname', ['-r'], { encoding: 'utf8' }).split('.').map(Number)
  if (major > 6 || (major === 6 && minor >= 7)) assert.is(info.writeScan, 'PAGEMAP_SCAN', 'Linux 6.7 has PAGEMAP_SCAN')
  else assert.ok(info.writeScan === 'pagemap' || info.writeScan === 'PAGEMAP_SCAN')
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
