// Headers on every answer of the service (webhook, dashboard, Bull Board, metrics, errors): no page of it
// may be framed by another site (clickjacking of Bull Board's buttons), no answer is sniffed into another
// content type, and no URL of the dashboard leaks to another site as a Referer. The policy is only
// `frame-ancestors`: Bull Board's own scripts and styles are left as they are.
import type { RequestHandler } from 'express';

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export function securityHeaders(): RequestHandler {
  return (_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  };
}
