/**
 * Every error txarray throws is a TxarrayError with a stable string `code` (prefix TXA_,
 * which cannot collide with Node's own ERR_* codes). Each subclass holds its code as a
 * static `code` too. The classes are handed to the native addon at load time, so native
 * failures arrive as the same classes.
 */
export class TxarrayError extends Error {
  static readonly code: string = 'TXA_ERROR'
  readonly code: string
  constructor(message: string, code?: string) {
    super(message)
    this.name = new.target.name
    this.code = code ?? (new.target as typeof TxarrayError).code
  }
}

/** No array of that name (or it was deleted); or no store at the path opened with `create: false` or `readOnly`. */
export class NotFoundError extends TxarrayError { static override readonly code = 'TXA_NOT_FOUND' }
/** create() of a name that already exists. */
export class AlreadyExistsError extends TxarrayError { static override readonly code = 'TXA_EXISTS' }
/** Unknown dtype, data of the wrong TypedArray type, or an array of another dtype than asked for. */
export class DTypeError extends TxarrayError { static override readonly code = 'TXA_DTYPE' }
/** Bad shape, or data whose length does not fit the selection or row size. */
export class ShapeError extends TxarrayError { static override readonly code = 'TXA_SHAPE' }
/** An index or selection outside the array. */
export class BoundsError extends TxarrayError { static override readonly code = 'TXA_BOUNDS' }

/** Inclusive range [first, last] of block or row indexes. */
export type IndexRange = [first: number, last: number]

/** What a ConflictError knows about a conflict (absent fields are unknown). */
export interface ConflictFacts {
  /** Name of the array both transactions changed. */
  array?: string
  /** Serial of the commit that won: the first since this snapshot to conflict. */
  serial?: number
  /** Both changed the array's record: its shape, attributes or existence. */
  metadata?: boolean
  /** Storage blocks both wrote, as inclusive ranges of block indexes. */
  blocks?: IndexRange[]
  /** The rows of axis 0 those blocks hold, as inclusive ranges. */
  rows?: IndexRange[]
}

/**
 * Another commit changed what this transaction changes; abort and retry (transact() does).
 * Names the array, the blocks and rows both wrote, and the serial of the commit that won,
 * so that a caller can log the conflict or retry only the work it touched. All are
 * unknown when the snapshot is older than the commit log reaches.
 */
export class ConflictError extends TxarrayError {
  static override readonly code = 'TXA_CONFLICT'
  /** Name of the array both transactions changed; undefined when unknown. */
  readonly array: string | undefined
  /** Serial of the commit that won; undefined when unknown. */
  readonly serial: number | undefined
  /** True when both changed the array's shape, attributes or existence. */
  readonly metadata: boolean
  /** Block ranges both wrote ([first, last], inclusive); empty for a metadata conflict. */
  readonly blocks: IndexRange[]
  /** Row ranges of axis 0 those blocks hold ([first, last], inclusive). */
  readonly rows: IndexRange[]

  constructor(message: string, facts: ConflictFacts = {}) {
    super(message)
    this.array = facts.array
    this.serial = facts.serial
    this.metadata = facts.metadata ?? false
    this.blocks = facts.blocks ?? []
    this.rows = facts.rows ?? []
  }
}

/** The store (or a view of it) was closed. */
export class ClosedError extends TxarrayError { static override readonly code = 'TXA_CLOSED' }
/** The path holds a store of an unknown format version, or damaged metadata. */
export class FormatError extends TxarrayError { static override readonly code = 'TXA_FORMAT' }
/** An argument of the wrong type or range. */
export class ArgumentError extends TxarrayError { static override readonly code = 'TXA_ARGUMENT' }
/** LMDB or the operating system failed (permissions, I/O errors...). */
export class StorageError extends TxarrayError { static override readonly code = 'TXA_STORAGE' }
/** The file system has no space (or quota) left: free some and retry; committed data is intact. */
export class DiskFullError extends TxarrayError { static override readonly code = 'TXA_DISK_FULL' }
/** A change through a handle opened with `readOnly: true`. */
export class ReadOnlyError extends TxarrayError { static override readonly code = 'TXA_READ_ONLY' }
/** A view larger than the platform can map in one TypedArray. */
export class TooLargeError extends TxarrayError { static override readonly code = 'TXA_TOO_LARGE' }
/**
 * The store's files are damaged: a stored block whose header is not a block header or whose
 * checksum does not match, a data file shorter than its meta page claims (or empty), a
 * record or block pointing past the end of the file.
 */
export class CorruptionError extends TxarrayError { static override readonly code = 'TXA_CORRUPT' }
/** A transaction used wrongly (nested transact, async function, refresh with changes). */
export class TransactionError extends TxarrayError { static override readonly code = 'TXA_TRANSACTION' }
/** A feature this build of txarray does not have. */
export class UnsupportedError extends TxarrayError { static override readonly code = 'TXA_UNSUPPORTED' }
/** A .npy file that is malformed, hostile, truncated, or holds a dtype txarray does not have. */
export class NpyFormatError extends TxarrayError { static override readonly code = 'TXA_NPY' }

/** A wait (waitForLength, waitForCommit, watch) ran out of time (its timeoutMs). */
export class TimeoutError extends TxarrayError { static override readonly code = 'TXA_TIMEOUT' }
/** A wait was cancelled through its AbortSignal; `cause` is the signal's reason. */
export class AbortError extends TxarrayError { static override readonly code = 'TXA_ABORTED' }
/**
 * watch() was asked for commits the commit log no longer holds (see the logRetention
 * option of open()): resynchronise from a snapshot, then watch from store.serial.
 */
export class LogPrunedError extends TxarrayError { static override readonly code = 'TXA_LOG_PRUNED' }
/**
 * The remote store (PostgreSQL) cannot be reached, or stopped answering. Nothing of the
 * failed call took effect (a commit whose outcome is not known throws
 * CommitOutcomeUnknownError instead); the handle keeps its snapshot and its changes.
 */
export class RemoteUnavailableError extends TxarrayError { static override readonly code = 'TXA_REMOTE_UNAVAILABLE' }
/**
 * The connection to the remote store was lost while a commit was on its way, and the
 * outcome could not be looked up yet: `commitId` says which commit. Asking again when the
 * server is back gives a definite answer (the id is fenced first: it never lands later).
 */
export class CommitOutcomeUnknownError extends TxarrayError {
  static override readonly code = 'TXA_COMMIT_UNKNOWN'
  /** The id of the commit whose outcome is unknown. */
  readonly commitId: string | undefined
  constructor(message: string, commitId?: string) {
    super(message)
    this.commitId = commitId
  }
}

/**
 * A commit in doubt for longer than the remote store keeps what it decided of commit ids
 * (retention's `keepIds`, 7 days by default): the server can no longer say whether it
 * landed, so it is never committed again. Code TXA_COMMIT_UNKNOWN, as the doubt it ends in;
 * the handle stays in doubt (commit() throws this again): abort() drops the changes, and
 * the caller checks the store for them.
 */
export class CommitOutcomeForgottenError extends CommitOutcomeUnknownError {}

/** Error classes by code, as handed to the native addon. */
export const errorClassesByCode: Record<string, new (message: string) => TxarrayError> = Object.fromEntries(
  [
    NotFoundError, AlreadyExistsError, DTypeError, ShapeError, BoundsError, ConflictError,
    ClosedError, FormatError, ArgumentError, StorageError, TooLargeError, TransactionError,
    CorruptionError, DiskFullError, ReadOnlyError, NpyFormatError, UnsupportedError, TimeoutError, AbortError,
    LogPrunedError,
    RemoteUnavailableError, CommitOutcomeUnknownError,
  ].map((cls) => [cls.code, cls]),
)
