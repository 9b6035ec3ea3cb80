/**
 * Every error txarray throws is a TxarrayError with a stable string `code`. The classes
 * are handed to the native addon at load time, so native failures arrive as the same
 * classes.
 */
export class TxarrayError extends Error {
  readonly code: string
  constructor(message: string, code = 'TXA_ERROR') {
    super(message)
    this.name = new.target.name
    this.code = code
  }
}

function errorClass<C extends string>(code: C) {
  return class extends TxarrayError {
    static readonly code: C = code
    constructor(message: string) {
      super(message, code)
    }
  }
}

/** No array of that name (or it was deleted). */
export class NotFoundError extends errorClass('TXA_NOT_FOUND') {}
/** create() of a name that already exists. */
export class AlreadyExistsError extends errorClass('TXA_EXISTS') {}
/** Unknown dtype, or data of the wrong TypedArray type. */
export class DTypeError extends errorClass('TXA_DTYPE') {}
/** Bad shape, or data whose length does not fit the selection or row size. */
export class ShapeError extends errorClass('TXA_SHAPE') {}
/** An index or selection outside the array. */
export class BoundsError extends errorClass('TXA_BOUNDS') {}
/** Another commit changed what this transaction changes; abort and retry (transact() does). */
export class ConflictError extends errorClass('TXA_CONFLICT') {}
/** The store (or a view of it) was closed. */
export class ClosedError extends errorClass('TXA_CLOSED') {}
/** The path holds a store of an unknown format version, or damaged metadata. */
export class FormatError extends errorClass('TXA_FORMAT') {}
/** An argument of the wrong type or range. */
export class ArgumentError extends errorClass('TXA_ARGUMENT') {}
/** LMDB or the operating system failed (disk full, permissions...). */
export class StorageError extends errorClass('TXA_STORAGE') {}
/** A view larger than the platform can map in one TypedArray. */
export class TooLargeError extends errorClass('TXA_TOO_LARGE') {}
/** A stored block is damaged: its header is not a block header, or its checksum does not match. */
export class CorruptionError extends errorClass('TXA_CORRUPT') {}
/** A transaction used wrongly (nested transact, async function, refresh with changes). */
export class TransactionError extends errorClass('TXA_TRANSACTION') {}

/** Error classes by code, as handed to the native addon. */
export const errorClassesByCode: Record<string, new (message: string) => TxarrayError> = Object.fromEntries(
  [
    NotFoundError, AlreadyExistsError, DTypeError, ShapeError, BoundsError, ConflictError,
    ClosedError, FormatError, ArgumentError, StorageError, TooLargeError, TransactionError,
    CorruptionError,
  ].map((cls) => [cls.code, cls]),
)
