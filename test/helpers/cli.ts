/** Runs the `txarray` command (src/cli/run.ts through tsx) as a child process. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main'
import { tsxRegister } from './child'

export const cliEntry = path.join(__dirname, '..', '..', 'src', 'cli', 'run.ts')

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Runs main() of the command in this process with `input` on stdin (fast: for the many
 * detailed output checks; each command also runs as a child process in the tests).
 */
export async function txarrayInProcess(args: readonly string[], input: string | Buffer = ''): Promise<CliResult> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const stdin = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d: Buffer) => { out += d.toString('utf8') })
  stderr.on('data', (d: Buffer) => { err += d.toString('utf8') })
  stdin.end(input)
  const status = await main([...args], { stdout, stderr, stdin, progress: false, signal: new AbortController().signal })
  await new Promise((resolve) => setImmediate(resolve))
  return { status, stdout: out, stderr: err }
}

/** Runs `txarray ...args` to completion in a child process, with `input` on stdin. */
export function txarray(args: readonly string[], input: string | Buffer = ''): CliResult {
  const r = spawnSync(process.execPath, ['-r', tsxRegister, cliEntry, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.error) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Starts `txarray ...args` in the background (stdin closed). */
export function startTxarray(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['-r', tsxRegister, cliEntry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Resolves with each complete stdout line of a child as it arrives. */
export function lines(child: ChildProcess, onLine: (line: string) => void): void {
  let rest = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (piece: string) => {
    const parts = (rest + piece).split('\n')
    rest = parts.pop() ?? ''
    for (const l of parts) onLine(l)
  })
}

/** Waits for the child's exit code. */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.on('exit', (code) => resolve(code))
  })
}

export { spawnSync }
