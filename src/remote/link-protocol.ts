/** The messages between a RemoteLink and its connection thread (link-worker.ts). */
import type { ConflictFacts } from '../errors'
import type { CommitPlan } from './commit-plan'
import type { WantedBlock } from './block-fetch'

export type LinkRequest =
  | { id: number; op: 'open' }
  | { id: number; op: 'commit'; plan: CommitPlan }
  | { id: number; op: 'resolve'; commitId: string; snapshot: number }
  | { id: number; op: 'changesSince'; after: number }
  | { id: number; op: 'catchUp'; atLeast?: number }
  | { id: number; op: 'fetch'; arrayId: number; blocks: WantedBlock[] }
  | { id: number; op: 'close' }
  /** The handle moved to snapshot `serial` (no reply: the link's thread records it in the clients row). */
  | { id: number; op: 'moved'; serial: number }

/** A coded failure, rebuilt as its error class on the caller's side. */
export interface WireError {
  code: string
  message: string
  facts?: ConflictFacts
  commitId?: string
  /** TXA_COMMIT_UNKNOWN for good: the server no longer knows the commit id (CommitOutcomeForgottenError). */
  forgotten?: boolean
}

export interface LinkReply {
  id: number
  value?: unknown
  error?: WireError
}
