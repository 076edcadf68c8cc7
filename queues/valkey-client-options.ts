// The Valkey connection contract beyond VALKEY_URL: an ACL user and password (from a Secret, as they are)
// and the CA that signs the server's certificate. The same for an external and the chart's bundled Valkey.
import { readFile } from 'node:fs/promises';
import type { RedisOptions } from 'iovalkey';

export interface ValkeyClientSettings {
  username?: string;
  password?: string;
  /** PEM CA bundle file for a rediss:// server. */
  tlsCaFile?: string;
}

export class ValkeyTlsCaError extends Error {
  override name = 'ValkeyTlsCaError';
}

/**
 * Options for iovalkey: credentials in the URL win (iovalkey applies the URL first, options only fill
 * what it left out); the CA replaces the system's trust store for this connection only.
 */
export async function valkeyClientOptions(settings: ValkeyClientSettings): Promise<RedisOptions> {
  const options: RedisOptions = {};
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
