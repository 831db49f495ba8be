/**
 * The one map from engine error codes to HTTP status codes. Docker clients classify errors by
 * status (400 invalid parameter, 404 not found, 409 conflict, 500 system error), so every error
 * the API returns goes through here.
 */
import { EngineError, type ErrorCode, messageOf } from "../errors.ts";

/** HTTP status for each error code. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  "invalid-argument": 400,
  "permission-denied": 403,
  "not-found": 404,
  "already-exists": 409,
  conflict: 409,
  "failed-precondition": 412,
  "resource-exhausted": 413,
  internal: 500,
  "not-implemented": 501,
  unavailable: 503,
};

/** Status and message for any thrown value; non-engine errors are 500 with their message. */
export function renderError(err: unknown): { status: number; message: string } {
  if (err instanceof EngineError) return { status: STATUS_BY_CODE[err.code], message: err.message };
  return { status: 500, message: messageOf(err) };
}
