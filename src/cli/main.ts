/**
 * The `txarray` command: `txarray <command> [arguments] [options]`. Each command parses
 * its own options with node:util parseArgs; every command takes --json and --help.
 * Exit codes: 0 ok, 1 failure, 2 usage error, 3 damage found by check (see docs/cli.md).
 */
import { parseArgs } from 'node:util'
import { ArgumentError, TxarrayError } from '../errors'
import { type Command, EXIT } from './command'
import { type Context, printJson, writeLine } from './context'
import { append } from './commands/append'
import { bench } from './commands/bench'
import { cat } from './commands/cat'
import { check } from './commands/check'
import { create } from './commands/create'
import { exportCommand } from './commands/export'
import { importCommand } from './commands/import'
import { info } from './commands/info'
import { ls } from './commands/ls'
import { stat } from './commands/stat'
import { watch } from './commands/watch'

export const commands: Command[] = [info, ls, create, importCommand, exportCommand, cat, append, stat, check, watch, bench]

const EXIT_CODES = `Exit codes:
  0  success
  1  failure (the error's code and message are printed on stderr)
  2  usage error: unknown command or option, missing or bad argument, bad selection
  3  check found damage`

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version
}

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  return `txarray ${version()}: transactional, out-of-core typed arrays, from the shell

Usage: txarray <command> [arguments] [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Every command takes --json (machine-readable output on stdout, errors as JSON on
stderr) and --help. STORE is a store directory.

${EXIT_CODES}`
}

function commandHelp(c: Command): string {
  return `Usage: txarray ${c.name}${c.args ? ` ${c.args}` : ''} [options]

${c.summary}.

${c.help}

Common options:
  --json   machine-readable output (one JSON value per line on stdout)
  --help   this text

${EXIT_CODES}`
}

/** Errors a user's input causes: exit 2. */
function isUsageError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code
  return e instanceof ArgumentError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
}

function report(ctx: Context, e: unknown): number {
  const err = e as { code?: unknown; message?: unknown }
  const code = typeof err?.code === 'string' ? err.code : 'ERROR'
  const message = typeof err?.message === 'string' ? err.message : String(e)
  if (ctx.json) writeLine(ctx.stderr, JSON.stringify({ error: { code, message } }))
  else writeLine(ctx.stderr, `txarray: ${code}: ${message}`)
  if (!(e instanceof TxarrayError) && !(typeof code === 'string' && (code.startsWith('E') || code.startsWith('ERR_'))) && !ctx.json) {
    // an unexpected failure: the stack helps a bug report
    writeLine(ctx.stderr, String((e as Error)?.stack ?? ''))
  }
  return isUsageError(e) ? EXIT.usage : EXIT.failure
}

/** Runs the command line `argv` (without node and the script). Returns the exit code. */
export async function main(argv: string[], io: Omit<Context, 'json'>): Promise<number> {
  const json = argv.includes('--json')
  const ctx: Context = { ...io, json }
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined
    writeLine(ctx.stdout, target ? commandHelp(target) : mainHelp())
    return EXIT.ok
  }
  if (name === '--version' || name === '-v') {
    if (json) printJson(ctx, { version: version() })
    else writeLine(ctx.stdout, version())
    return EXIT.ok
  }
  const command = commands.find((c) => c.name === name)
  if (!command) return report(ctx, new ArgumentError(`unknown command '${name}'; run txarray --help for the list`))
  try {
    // '-1' or '-5:, 0' is a selection, not an option: parseArgs must see it as a positional
    const negative = new Map<string, string>()
    const args = rest.map((a, i) => {
      if (!/^-[\d:.]/.test(a)) return a
      const token = `\u0000${i}`
      negative.set(token, a)
      return token
    })
    const parsed = parseArgs({
      args,
      options: { ...command.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    })
    const values = parsed.values
    const positionals = parsed.positionals.map((p) => negative.get(p) ?? p)
    for (const [key, value] of Object.entries(values)) {
      if (typeof value === 'string' && negative.has(value)) (values as Record<string, unknown>)[key] = negative.get(value)
    }
    if (values.help) {
      writeLine(ctx.stdout, commandHelp(command))
      return EXIT.ok
    }
    const [min, max] = command.arity
    if (positionals.length < min || positionals.length > max) {
      throw new ArgumentError(`usage: txarray ${command.name} ${command.args} (see txarray ${command.name} --help)`)
    }
    return await command.run(ctx, positionals, values)
  } catch (e) {
    return report(ctx, e)
  }
}
