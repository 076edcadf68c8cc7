// Authentication and roles for the dashboard (everything under /admin): Bull Board has none of its own,
// and its pages show every job's data. Two roles: a viewer reads; an operator may also retry, promote and
// clean jobs in Bull Board, replay dead letters and start reconciles. Credentials come from the
// environment (a Secret in a cluster); comparison is by digest so neither length nor content leaks
// through timing. Behind an SSO proxy, the proxy's identity headers may be trusted instead, but only when
// explicitly configured (trustedHeaders): anyone who can reach the service directly could forge them.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';

export interface DashboardCredentials {
  username: string;
  password: string;
}

export type DashboardRole = 'viewer' | 'operator';

/** Identity headers set by an authenticating proxy (oauth2-proxy, Pomerium, an ingress's auth): off unless given. */
export interface TrustedHeaderOptions {
  /** The header naming the authenticated user. @defaultValue 'x-forwarded-user' */
  userHeader?: string;
  /** The header listing the user's groups, comma-separated. @defaultValue 'x-forwarded-groups' */
  groupsHeader?: string;
  /** Members of this group are operators; everyone else the proxy lets through is a viewer. Unset: nobody is. */
  operatorGroup?: string;
}

export interface DashboardAuthOptions {
  /** The viewer's credentials (DASHBOARD_USERNAME/DASHBOARD_PASSWORD). */
  viewer?: DashboardCredentials;
  /** The operator's credentials (DASHBOARD_OPERATOR_USERNAME/DASHBOARD_OPERATOR_PASSWORD). */
  operator?: DashboardCredentials;
  /**
   * DASHBOARD_READ_ONLY=false: the viewer's credentials (or anyone, when no authentication is configured)
   * get the operator role, as before roles existed.
   */
  viewerIsOperator: boolean;
  /** Trust a proxy's identity headers; undefined (the default) = never. */
  trustedHeaders?: TrustedHeaderOptions;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function basicUser(header: string | undefined): Buffer | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  return match ? digest(Buffer.from(match[1]!, 'base64').toString('utf8')) : undefined;
}

/** Whether any authentication is configured; without it, the dashboard is open (a proxy in front must add it). */
export function hasDashboardAuth(opts: DashboardAuthOptions): boolean {
  return Boolean(opts.viewer ?? opts.operator ?? opts.trustedHeaders);
}

/** Authenticates a request and records its role in res.locals (see dashboardRole); 401 otherwise. */
export function dashboardAuth(opts: DashboardAuthOptions, realm: string): RequestHandler {
  const viewer = opts.viewer && digest(`${opts.viewer.username}:${opts.viewer.password}`);
  const operator = opts.operator && digest(`${opts.operator.username}:${opts.operator.password}`);
  const viewerRole: DashboardRole = opts.viewerIsOperator ? 'operator' : 'viewer';
  const trusted = opts.trustedHeaders && {
    user: (opts.trustedHeaders.userHeader ?? 'x-forwarded-user').toLowerCase(),
    groups: (opts.trustedHeaders.groupsHeader ?? 'x-forwarded-groups').toLowerCase(),
    operatorGroup: opts.trustedHeaders.operatorGroup,
  };
  const open = !hasDashboardAuth(opts);
  return (req, res, next) => {
    if (open) {
      res.locals.dashboardRole = viewerRole;
      return next();
    }
    const given = basicUser(req.get('authorization'));
    // Both comparisons always run: the time taken does not tell which role matched.
    const isOperator = given !== undefined && operator !== undefined && timingSafeEqual(given, operator);
    const isViewer = given !== undefined && viewer !== undefined && timingSafeEqual(given, viewer);
    if (isOperator || isViewer) {
      res.locals.dashboardRole = isOperator ? 'operator' : viewerRole;
      return next();
    }
    const user = trusted && req.get(trusted.user)?.trim();
    if (trusted && user) {
      const groups = (req.get(trusted.groups) ?? '').split(',').map((g) => g.trim());
      res.locals.dashboardRole = trusted.operatorGroup !== undefined && groups.includes(trusted.operatorGroup) ? 'operator' : 'viewer';
      res.locals.dashboardUser = user;
      return next();
    }
    if (viewer ?? operator) res.set('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
    res.status(401).json({ error: 'authentication required for the dashboard', reason: 'unauthenticated' });
  };
}

/** The role dashboardAuth gave this request; undefined when it did not run. */
export function dashboardRole(res: Response): DashboardRole | undefined {
  const role: unknown = res.locals.dashboardRole;
  return role === 'viewer' || role === 'operator' ? role : undefined;
}

/**
 * Whether this request may take an operator action: by its role, or (for a router used without
 * dashboardAuth in front) by the global read-only switch.
 */
export function mayOperate(res: Response, readOnly: boolean): boolean {
  const role = dashboardRole(res);
  return role ? role === 'operator' : !readOnly;
}

