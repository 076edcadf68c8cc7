// Under /admin, every request that may change something (any method but GET and HEAD) must come from the
// dashboard's own pages or from a client that is no browser: a page on another site can make a logged-in
// operator's browser send a form (urlencoded, multipart, text/plain) or a simple fetch without any CORS
// preflight, with the operator's basic-auth credentials or SSO cookie attached. So:
//
//  - 403 {reason: "cross-site"} when the browser says the request came from another site
//    (`Sec-Fetch-Site: cross-site` or `same-site`), or its `Origin` names another host:port than the
//    request's `Host` (or, behind a trusted SSO proxy only, than its `X-Forwarded-Host`);
//  - 415 {reason: "content-type"} when it carries a body that is not JSON: the types a cross-site form can
//    send without a preflight. A request without a body (what Bull Board's buttons send) passes.
//
// Clients that send neither header (curl, scripts) are not browsers and are not refused for it.
import type { Request, RequestHandler } from 'express';

export interface SameOriginOptions {
  /**
   * Also accept an Origin naming the host in X-Forwarded-Host: only behind a proxy trusted to set it
   * (DASHBOARD_TRUSTED_HEADERS), as anyone reaching the service directly could send it.
   */
  trustForwardedHost: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** The host:port names the request was sent to, as its Origin would spell them. */
function requestHosts(req: Request, trustForwardedHost: boolean): string[] {
  const hosts = [req.get('host')];
  // A proxy chain appends: the first is what the browser asked for (as Express's req.host reads it).
  if (trustForwardedHost) hosts.push(req.get('x-forwarded-host')?.split(',')[0]?.trim());
  return hosts.filter((h): h is string => Boolean(h));
}

/** Same host and port, with the Origin's scheme's default port (Host leaves it out, so may Origin). */
function sameHost(origin: URL, host: string): boolean {
  try {
    return new URL(`${origin.protocol}//${host}`).host === origin.host;
  } catch {
    return false;
  }
}

/** Why the request looks cross-site; undefined when it does not. */
export function crossSiteReason(req: Request, trustForwardedHost: boolean): string | undefined {
  const site = req.get('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return `the request came from another site (Sec-Fetch-Site: ${site})`;
  const origin = req.get('origin');
  if (origin === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(origin);
  } catch {
    url = undefined;
  }
  const hosts = requestHosts(req, trustForwardedHost);
  if (url && hosts.some((host) => sameHost(url, host))) return undefined;
  return `the request came from another origin (Origin: ${origin.slice(0, 200)}, not ${hosts.join(' or ') || 'this host'})`;
}

/** Why the request's body is refused; undefined when it has none, or a JSON one. */
export function bodyTypeReason(req: Request): string | undefined {
  // null: no body at all; a string: a JSON body; false: a body (maybe empty) of another type, or of none.
  if (req.is('application/json') !== false) return undefined;
  // An empty body that claims no type (a button's PUT) carries nothing to forge.
  if (req.get('content-length') === '0' && req.get('content-type') === undefined) return undefined;
  return `send a JSON body (Content-Type: application/json) or none, not ${req.get('content-type') ?? 'a body without a content type'}`;
}

export function sameOriginJson(opts: SameOriginOptions): RequestHandler {
  return (req, res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    const crossSite = crossSiteReason(req, opts.trustForwardedHost);
    if (crossSite) {
      res.status(403).json({ error: `refused: ${crossSite}; dashboard changes are only taken from the dashboard's own pages`, reason: 'cross-site' });
      return;
    }
    const body = bodyTypeReason(req);
    if (body) {
      res.status(415).json({ error: body, reason: 'content-type' });
      return;
    }
    next();
  };
}
