// Warnings about source clusters whose audit batches the listener as configured will refuse: clusters that
// authenticate by client certificate only without a client CA, and token clusters over plain HTTP.
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { TlsFiles } from '../dashboard/listen.js';
import { PLAIN_HTTP_TOKEN_WARNING, tokenClustersOverPlainHttp } from '../workers/ingest/webhook-auth.js';

/** Returns the check to run on each configuration that takes effect. */
export function clusterAuthWarnings(tls: TlsFiles | undefined, logger: Logger): (clusters: ResolvedConfig['clusters']) => void {
  /** Token clusters already warned about for a plain HTTP listener: a change warns only of the ones it adds. */
  let tokenClustersWarned = new Set<string>();
  return (clusters) => {
    const certOnly = [...clusters.values()].filter((c) => c.clientCommonName && !c.token).map((c) => c.name);
    if (certOnly.length > 0 && !tls?.clientCaFile) {
      logger.warn({ clusters: certOnly }, 'these clusters authenticate by client certificate only, but TLS_CLIENT_CA_FILE is not set: their audit batches will be refused');
    }
    const overHttp = tokenClustersOverPlainHttp(clusters.values(), tls !== undefined);
    const added = overHttp.filter((name) => !tokenClustersWarned.has(name));
    tokenClustersWarned = new Set(overHttp);
    if (added.length > 0) logger.warn({ clusters: added }, PLAIN_HTTP_TOKEN_WARNING);
  };
}
