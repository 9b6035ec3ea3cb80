/**
 * Following a remote store: PostgreSQL sends one notification per commit (payload: its
 * serial) on the channel `<schema>_commit`. NOTIFY has no replay, so a follower LISTENs
 * first and then catches up from its own serial: nothing committed in between is missed.
 */
import type { Client } from 'pg'
import { checkSchemaName, DEFAULT_SCHEMA } from './schema'

/** The channel commits of a remote store are announced on. */
export function commitChannel(schema = DEFAULT_SCHEMA): string {
  return `${checkSchemaName(schema)}_commit`
}

/**
 * Calls onCommit(serial) for every commit notification `client` receives from now on
 * (after the LISTEN has taken effect). Returns a function that stops listening.
 */
export async function listenForCommits(client: Client, onCommit: (serial: number) => void, schema = DEFAULT_SCHEMA):
Promise<() => Promise<void>> {
  const channel = commitChannel(schema)
  const handler = (message: { channel: string; payload?: string }) => {
    if (message.channel === channel && message.payload) onCommit(Number(message.payload))
  }
  client.on('notification', handler)
  await client.query(`LISTEN ${channel}`)
  return async () => {
    client.off('notification', handler)
    await client.query(`UNLISTEN ${channel}`)
  }
}
