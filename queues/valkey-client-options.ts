// The Valkey connection contract beyond VALKEY_URL: an ACL user and password (from a Secret, as they are)
// and the CA that signs the server's certificate. The same for an external and the chart's bundled Valkey.
import { readFile } from 'node:fs/promises';
import type { ServiceEnv } from '../config/env.js';

export interface ValkeyClientSettings {
  username?: string;
  password?: string;
  /** PEM CA bundle file for a rediss:// server. */
  tlsCaFile?: string;
}

export class ValkeyTlsCaError extends Error {
  override name = 'ValkeyTlsCaError';
}

/** What a connection takes beyond its URL: nothing that could undo the options BullMQ needs. */
export interface ValkeyClientOptions {
  username?: string;
  password?: string;
  tls?: { ca: string };
}

/**
 * Options for iovalkey (readEnv refuses credentials both here and in the URL: iovalkey would take the
 * URL's pair and drop these); the CA replaces the system's trust store for this connection only.
 */
export async function valkeyClientOptions(settings: ValkeyClientSettings): Promise<ValkeyClientOptions> {
  const options: ValkeyClientOptions = {};
  if (settings.username) options.username = settings.username;
  if (settings.password) options.password = settings.password;
  if (settings.tlsCaFile) {
    let ca: string;
    try {
      ca = await readFile(settings.tlsCaFile, 'utf8');
    } catch (err) {
      throw new ValkeyTlsCaError(`VALKEY_TLS_CA_FILE ${settings.tlsCaFile} cannot be read: ${(err as Error).message}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new ValkeyTlsCaError(`VALKEY_TLS_CA_FILE ${settings.tlsCaFile} holds no PEM certificate`);
    }
    options.tls = { ca };
  }
  return options;
}

/** The options of the VALKEY_* variables; read before anything else starts, so a bad CA file stops the start. */
export function valkeyClientOptionsFromEnv(env: Pick<ServiceEnv, 'VALKEY_USERNAME' | 'VALKEY_PASSWORD' | 'VALKEY_TLS_CA_FILE'>): Promise<ValkeyClientOptions> {
  return valkeyClientOptions({ username: env.VALKEY_USERNAME, password: env.VALKEY_PASSWORD, tlsCaFile: env.VALKEY_TLS_CA_FILE });
}
