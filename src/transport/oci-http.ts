import { HttpFiles } from './http-files.js';
import { LayoutSource } from './oci-layout.js';
import type { TransportOptions } from './options.js';

/** `URL[:REF]` split: REF follows the first colon after the URL's last slash (`https://host:8443/layouts/app:v1`). */
export function parseHttpLayoutReference(rest: string): { url: string; ref?: string } {
  if (!/^https?:\/\/[^/]+/.test(rest)) throw new Error(`oci-http:${rest}: expected oci-http:http(s)://HOST/PATH[:REF]`);
  const lastSlash = rest.indexOf('/', rest.indexOf('//') + 2) < 0 ? -1 : rest.lastIndexOf('/');
  if (lastSlash < 0) return { url: rest };
  const colon = rest.indexOf(':', lastSlash);
  if (colon < 0) return { url: rest };
  const ref = rest.slice(colon + 1);
  return ref ? { url: rest.slice(0, colon), ref } : { url: rest.slice(0, colon) };
}

/** Opens an OCI layout on a static web server, `oci-http:URL[:REF]`: read-only, plain GETs. */
export function openHttpLayoutSource(rest: string, opts: TransportOptions): Promise<LayoutSource> {
  const { url, ref } = parseHttpLayoutReference(rest);
  return LayoutSource.open(
    new HttpFiles(url, opts.tlsVerify === false ? { tlsVerify: false } : {}),
    ref,
    `oci-http:${rest}`,
  );
}
