import type { MinRate } from './min-rate.js';
import type { ConnectionSettings, RegistryPool } from './registry-pool.js';

/** Settings that reach a transport from the command line (`--src-creds`, `--src-tls-verify`, ...). */
export interface TransportOptions extends ConnectionSettings {
  /** `USER[:PASSWORD]` for a registry (`--src-creds` / `--dest-creds`). */
  creds?: string;
  /** An auth file in the Docker config format (`--authfile`); else the usual default places. */
  authFile?: string;
  /** False to skip TLS verification and allow plain HTTP to this registry (`--tls-verify=false`). */
  tlsVerify?: boolean;
  /** How often a failed request is retried (connection errors, 5xx, 429); default 3. */
  retryTimes?: number;
  /** Size of each PATCH of a chunked upload; 0 or unset sends one PATCH with the whole blob. */
  chunkSize?: number;
  /** Docker Engine endpoint for docker-daemon: (`unix:///path`); defaults to DOCKER_HOST. */
  daemonHost?: string;
  /** The registry's base URL (`https://host:port`), when it is reached somewhere other than its name says (an upstream's `url`). */
  baseUrl?: string;
  /** Milliseconds to wait for a connection and for response headers; default 300 s (a cache upstream sets a few seconds). */
  timeoutMs?: number;
  /** False to use only `creds`/`authFile`, never the user's default auth files (a server's upstreams). */
  searchDefaultAuthFiles?: boolean;
  /** Extra CA certificates (PEM) to trust for this registry. */
  ca?: string;
  /** Folder for temporary files (archives are unpacked or assembled there). */
  tmpDir?: string;
  /** The slowest a blob download from a registry may go before it is given up (an upstream's `minrate`); unset: no minimum. */
  minRate?: MinRate;
  /** Registry connections shared across the clients of a run (one Agent, ping and token cache per registry). */
  pool?: RegistryPool;
}
