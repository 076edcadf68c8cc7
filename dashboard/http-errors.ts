// How the HTTP surface answers an error it did not answer itself: JSON {error, reason} with a fitting
// status, never Express's HTML page (which shows the stack, and with it the service's install path). The
// errors Express and its body parsers raise carry their status (http-errors: `status`, `expose`, `type`):
// a client's mistake (4xx) is named; anything else is a 500 whose message and stack go to the log only.
import type { ErrorRequestHandler } from 'express';
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { isObject } from '../core/json.js';

export interface HttpError {
  status: number;
  /** What went wrong, for the client to read. */
  error: string;
  /** A stable token for the kind of error (`bad-url-encoding`, `malformed-json`, …). */
  reason: string;
}

/** body-parser's error types (raw-body, body-parser) and what each is called here. */
const BODY_ERRORS: Record<string, { status: number; reason: string }> = {
  'entity.parse.failed': { status: 400, reason: 'malformed-json' },
  'entity.too.large': { status: 413, reason: 'too-large' },
  'entity.verify.failed': { status: 403, reason: 'body-refused' },
  'encoding.unsupported': { status: 415, reason: 'unsupported-encoding' },
  'charset.unsupported': { status: 415, reason: 'unsupported-charset' },
  'request.aborted': { status: 400, reason: 'request-aborted' },
  'request.size.invalid': { status: 400, reason: 'body-size-mismatch' },
  'parameters.too.many': { status: 413, reason: 'too-many-parameters' },
};

/** The answer to an error: its own status and message for a client's mistake, a bare 500 for anything else. */
export function httpErrorOf(err: unknown): HttpError {
  const e = isObject(err) ? err : {};
  const message = typeof e.message === 'string' ? e.message : String(err);
  // The router could not decode a path parameter ("Failed to decode param '%ff'"): a URIError with status 400.
  if (err instanceof URIError) return { status: 400, error: `bad URL encoding: ${message}`, reason: 'bad-url-encoding' };
  const known = typeof e.type === 'string' ? BODY_ERRORS[e.type] : undefined;
  if (known) return { ...known, error: `the request body was refused: ${message}` };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  // Any other client error by its status alone: a wrapped system error's message may name a file.
  if (status >= 400 && status < 500) return { status, error: (STATUS_CODES[status] ?? 'bad request').toLowerCase(), reason: status === 404 ? 'not-found' : 'bad-request' };
  return { status: 500, error: 'internal error: the service logged what happened', reason: 'internal' };
}

/** Logs an error answered with `answer`: a server error with its stack, a client's at debug level. */
export function logHttpError(logger: Logger, err: unknown, answer: HttpError, request: { method: string; path: string }): void {
  if (answer.status >= 500) logger.error({ err, method: request.method, path: request.path, status: answer.status }, 'request failed');
  else logger.debug({ method: request.method, path: request.path, status: answer.status, reason: answer.reason, error: answer.error }, 'request refused');
}

/** The app's last handler: every error that reaches it is answered as JSON. */
export function jsonErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    // Half an answer is on its way already: Express's own handler closes the connection.
    if (res.headersSent) return next(err);
    const answer = httpErrorOf(err);
    logHttpError(logger, err, answer, { method: req.method, path: req.originalUrl.split('?')[0] ?? req.path });
    res.status(answer.status).json({ error: answer.error, reason: answer.reason });
  };
}
