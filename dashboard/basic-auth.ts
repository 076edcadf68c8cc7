// HTTP basic authentication for the dashboard: Bull Board has none of its own, and its pages show every
// job's data. Credentials come from the environment (a Secret in a cluster); comparison is by digest so
// neither length nor content leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

export interface DashboardCredentials {
  username: string;
  password: string;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function basicAuth(credentials: DashboardCredentials, realm: string): RequestHandler {
  const expected = digest(`${credentials.username}:${credentials.password}`);
  return (req, res, next) => {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.get('authorization') ?? '');
    const given = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    if (match && timingSafeEqual(digest(given), expected)) return next();
    res.set('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
    res.status(401).json({ error: 'authentication required for the dashboard' });
  };
}
