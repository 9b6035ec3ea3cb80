/**
 * Child script for remote-kill.test.ts (TXA_CHILD set), run as a process acting as a
 * machine: commits the plan given as JSON (byte strings in base64) through a link and
 * prints the outcome — unless it is killed first, which is the point.
 *   remote-commit.child.ts URL SCHEMA PLAN_JSON
 */
import type { CommitPlan } from '../../src/remote/commit-plan'
import { RemoteLink } from '../../src/remote/remote-link'

interface WirePlan extends Omit<CommitPlan, 'records' | 'blocks'> {
  records: (Omit<CommitPlan['records'][number], 'body' | 'append'> & { body: string; append?: string })[]
  blocks: (Omit<CommitPlan['blocks'][number], 'data'> & { data: string })[]
}

async function main(url: string, schema: string, json: string): Promise<void> {
  const wire = JSON.parse(json) as WirePlan
  const plan: CommitPlan = {
    ...wire,
    records: wire.records.map((r) => ({ ...r, body: Buffer.from(r.body, 'base64'), append: r.append === undefined ? undefined : Buffer.from(r.append, 'base64') })),
    blocks: wire.blocks.map((b) => ({ ...b, data: Buffer.from(b.data, 'base64') })),
  }
  const link = new RemoteLink(url, { schema })
  console.log('sending')
  console.log(JSON.stringify(await link.commit(plan)))
  await link.close()
}

if (process.env.TXA_CHILD) {
  const [url, schema, json] = process.argv.slice(2)
  main(url, schema, json).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
