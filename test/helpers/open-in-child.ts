/**
 * Runs open.child.ts: opens a store in a child process (optionally as another user) and
 * returns what it reported, with how the process ended.
 */
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { helpersDir, tsxRegister } from './child'
import type { OpenOutcome } from './open.child'

export interface ChildOpen {
  outcome: OpenOutcome | null
  /** The signal that killed the child (SIGBUS, SIGSEGV...), or null. */
  signal: NodeJS.Signals | null
  status: number | null
  output: string
}

export interface ChildOpenOptions {
  /** Also try a change after reading. */
  write?: boolean
  /**
   * Run as this uid/gid (root only), through setpriv. Such a child uses the SIGSEGV fault
   * mode: an unprivileged user may not have userfaultfd.
   */
  user?: number
}

export function openInChild(dir: string, options: object = {}, how: ChildOpenOptions = {}): ChildOpen {
  const args = ['-r', tsxRegister, path.join(helpersDir, 'open.child.ts'), dir, JSON.stringify(options), ...(how.write ? ['write'] : [])]
  const [command, argv] = how.user === undefined
    ? [process.execPath, args]
    : ['setpriv', [`--reuid=${how.user}`, `--regid=${how.user}`, '--clear-groups', process.execPath, ...args]]
  const r = spawnSync(command, argv, {
    encoding: 'utf8',
    env: { ...process.env, TXA_CHILD: '1', ...(how.user === undefined ? {} : { TXARRAY_FAULT_MODE: 'sigsegv' }) },
    timeout: 60_000,
  })
  const line = r.stdout?.trim().split('\n').at(-1) ?? ''
  let outcome: OpenOutcome | null = null
  try {
    outcome = JSON.parse(line) as OpenOutcome
  } catch {
    outcome = null
  }
  return { outcome, signal: r.signal, status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` }
}
