/** The shape of one `txarray` subcommand. */
import type { ParseArgsConfig } from 'node:util'
import type { Context, Values } from './context'

export interface Command {
  name: string
  /** One line for the command list. */
  summary: string
  /** Positional arguments as shown in the usage line, e.g. 'STORE NAME FILE'. */
  args: string
  /** Lowest and highest number of positional arguments. */
  arity: [number, number]
  /** Options besides --json and --help. */
  options: NonNullable<ParseArgsConfig['options']>
  /** Help text after the usage line: what it does, its options, an example. */
  help: string
  /** Returns the exit code. */
  run(ctx: Context, args: string[], values: Values): number | Promise<number>
}

/** Exit codes of the command (see docs/cli.md). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  damaged: 3,
} as const
