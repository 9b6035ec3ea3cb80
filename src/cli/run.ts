/**
 * Process entry of the `txarray` command: wires stdio and interrupts to main() and sets
 * the exit code. bin/txarray.js loads the compiled copy of this file.
 */
import { main } from './main'

const controller = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // the first interrupt asks the command to stop; a second ends the process at once
    if (controller.signal.aborted) process.exit(130)
    controller.abort()
  })
}

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  progress: Boolean(process.stderr.isTTY),
  signal: controller.signal,
}).then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    process.stderr.write(`txarray: ${(e as Error)?.stack ?? String(e)}\n`)
    process.exitCode = 1
  },
)
