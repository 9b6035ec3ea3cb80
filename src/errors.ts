/**
 * Every error txarray throws is a TxarrayError with a stable string `code`. The classes
 * are handed to the native addon at load time, so native failures arrive as the same
 * classes.
 */
export class TxarrayError extends Error {
  readonly code: string
  constructor(message: string, code = 'ERR_TXARRAY') {
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
export class NotFoundError extends errorClass('ERR_NOT_FOUND') {}
/** create() of a name that already exists. */
export class AlreadyExistsError extends errorClass('ERR_EXISTS') {}
/** Unknown dtype, or data of the wrong TypedArray type. */
export class DTypeError extends errorClass('ERR_DTYPE') {}
/** Bad shape, or data whose length does not fit the selection or row size. */
export class ShapeError extends errorClass('ERR_SHAPE') {}
/** An index or selection outside the array. */
export class BoundsError extends errorClass('ERR_BOUNDS') {}
/** Another commit changed what this transaction changes; abort and retry (transact() does). */
export class ConflictError extends errorClass('ERR_CONFLICT') {}
/** The store (or a view of it) was closed. */
export class ClosedError extends errorClass('ERR_CLOSED') {}
/** The path holds a store of an unknown format version, or damaged metadata. */
export class FormatError extends errorClass('ERR_FORMAT') {}
/** An argument of the wrong type or range. */
export class ArgumentError extends errorClass('ERR_ARGUMENT') {}
/** LMDB or the operating system failed (disk full, permissions...). */
export class StorageError extends errorClass('ERR_STORAGE') {}
/** A view larger than the platform can map in one TypedArray. */
export class TooLargeError extends errorClass('ERR_TOO_LARGE') {}
/** A transaction used wrongly (nested transact, async function, refresh with changes). */
export class TransactionError extends errorClass('ERR_TRANSACTION') {}

/** Error classes by code, as handed to the native addon. */
export const errorClassesByCode: Record<string, new (message: string) => TxarrayError> = Object.fromEntries(
  [
    NotFoundError, AlreadyExistsError, DTypeError, ShapeError, BoundsError, ConflictError,
    ClosedError, FormatError, ArgumentError, StorageError, TooLargeError, TransactionError,
  ].map((cls) => [cls.code, cls]),
)
