/**
 * Engine-wide error types. Every error that crosses a module boundary is one of these, so the API
 * layer can turn it into an HTTP status through one map (`core/api/error-status.ts`) and tests can
 * assert on `code` instead of message text.
 */

/** The closed set of error classes; each maps to exactly one HTTP status. */
export type ErrorCode = "not-found" | "already-exists" | "invalid-argument" | "failed-precondition" | "conflict" | "unavailable" | "not-implemented" | "permission-denied" | "resource-exhausted" | "internal";

/** An error with a machine-readable class. Wrap causes with `{ cause }`. */
export class EngineError extends Error {
  override name = "EngineError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand constructors keep call sites short and the code visible. */
export const notFound = (msg: string, cause?: unknown) => new EngineError("not-found", msg, { cause });
export const invalidArgument = (msg: string, cause?: unknown) => new EngineError("invalid-argument", msg, { cause });
export const conflict = (msg: string, cause?: unknown) => new EngineError("conflict", msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new EngineError("unavailable", msg, { cause });
export const resourceExhausted = (msg: string, cause?: unknown) => new EngineError("resource-exhausted", msg, { cause });

/**
 * A failed system call. Carries the syscall name, the errno (number and symbolic name) and the path
 * it acted on, so a log line is enough to reproduce the failure.
 */
export class SyscallError extends EngineError {
  override name = "SyscallError";
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly path?: string,
    detail?: string,
  ) {
    super(errnoCode(errno), `${syscall}${path ? ` ${path}` : ""}: ${errnoName(errno)} (${strerror(errno)})${detail ? `: ${detail}` : ""}`);
  }
  /** Symbolic errno such as `EPERM`. */
  get errnoName(): string {
    return errnoName(this.errno);
  }
}

/**
 * Thrown by a plugin's `init` when the host cannot support it (missing kernel feature, wrong
 * filesystem). The plugin is then skipped and listed with `reason` instead of failing the daemon.
 */
export class NotSupportedError extends EngineError {
  override name = "NotSupportedError";
  constructor(readonly reason: string) {
    super("not-implemented", reason);
  }
}

/** True for our NotSupportedError and for look-alikes thrown by third-party plugin modules. */
export function isNotSupported(err: unknown): err is { name: string; message: string; reason?: string } {
  return err instanceof NotSupportedError || (err instanceof Error && err.name === "NotSupportedError");
}

/** Best-effort error message for logs and CLI output. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const ERRNO: Record<number, [string, string]> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  5: ["EIO", "Input/output error"],
  9: ["EBADF", "Bad file descriptor"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  18: ["EXDEV", "Invalid cross-device link"],
  19: ["ENODEV", "No such device"],
  20: ["ENOTDIR", "Not a directory"],
  21: ["EISDIR", "Is a directory"],
  22: ["EINVAL", "Invalid argument"],
  24: ["EMFILE", "Too many open files"],
  28: ["ENOSPC", "No space left on device"],
  30: ["EROFS", "Read-only file system"],
  38: ["ENOSYS", "Function not implemented"],
  39: ["ENOTEMPTY", "Directory not empty"],
  40: ["ELOOP", "Too many levels of symbolic links"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  98: ["EADDRINUSE", "Address already in use"],
  110: ["ETIMEDOUT", "Connection timed out"],
  111: ["ECONNREFUSED", "Connection refused"],
};

/** `EPERM` for 1, `E<n>` for numbers outside the table. */
export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `E${errno}`;
}

/** The C library's text for an errno. */
export function strerror(errno: number): string {
  return ERRNO[errno]?.[1] ?? `errno ${errno}`;
}

function errnoCode(errno: number): ErrorCode {
  switch (errnoName(errno)) {
    case "ENOENT":
    case "ESRCH":
      return "not-found";
    case "EEXIST":
      return "already-exists";
    case "EPERM":
    case "EACCES":
      return "permission-denied";
    case "EINVAL":
      return "invalid-argument";
    case "EBUSY":
    case "EAGAIN":
    case "EWOULDBLOCK":
      return "unavailable";
    case "ENOSYS":
    case "EOPNOTSUPP":
      return "not-implemented";
    case "ENOSPC":
    case "ENOMEM":
    case "EMFILE":
      return "resource-exhausted";
    default:
      return "internal";
  }
}
