import { readFileSync } from 'node:fs';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { ConfigError } from './load.js';
import type { Config } from './schema.js';

function readKeyFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code ?? (e as Error).message})`;
    throw new ConfigError(`${key}: ${path} ${why}`);
  }
}

/**
 * Node TLS server options for Distribution's `http.tls` (undefined without it): certificate and key,
 * client certificates required and checked against `clientcas` when it is given, `minimumtls`.
 * Reads the files now, so a wrong path or a key that does not fit stops the start with the key's name.
 */
export function tlsServerOptions(tls: Config['http']['tls']): TlsOptions | undefined {
  if (!tls) return undefined;
  const opts: TlsOptions = {
    cert: readKeyFile('http.tls.certificate', tls.certificate),
    key: readKeyFile('http.tls.key', tls.key),
    minVersion: tls.minimumtls === 'tls1.3' ? 'TLSv1.3' : 'TLSv1.2',
  };
  if (tls.clientcas) {
    opts.ca = tls.clientcas.map((p, i) => readKeyFile(`http.tls.clientcas.${i}`, p));
    // Distribution's RequireAndVerifyClientCert: no handshake without a certificate one of these CAs signed.
    opts.requestCert = true;
    opts.rejectUnauthorized = true;
  }
  try {
    createSecureContext(opts);
  } catch (e) {
    throw new ConfigError(`http.tls: ${tls.certificate} and ${tls.key} cannot be used: ${(e as Error).message}`);
  }
  return opts;
}

/** Whether `host` is a loopback address, where plain HTTP never leaves the machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** The start-up warning for a plain-HTTP listener other machines can reach (undefined when there is none). */
export function plainHttpWarning(host: string, tls: Config['http']['tls']): string | undefined {
  if (tls || isLoopback(host)) return undefined;
  return `serving plain HTTP on ${host}: passwords and tokens cross the network unencrypted; set http.tls.certificate and http.tls.key`;
}
