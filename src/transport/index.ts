import { parseTransportReference, type ImageDestination, type ImageSource } from './transport.js';
import type { TransportOptions } from './options.js';
import type { BucketOptions } from './bucket.js';

// Each transport's module is loaded when a reference names it: `sluice inspect docker://…` does not load
// the tar code of the archives, the Docker Engine client or the S3 SDK of the bucket transport.

export type { TransportOptions } from './options.js';
export type { BucketOptions } from './bucket.js';

/** Opens the place a transport reference (`docker://…`, `oci:…`, …) names, for reading. */
export async function openSource(ref: string, opts: TransportOptions & BucketOptions = {}): Promise<ImageSource> {
  const { transport, rest } = parseTransportReference(ref);
  switch (transport) {
    case 'docker':
      return (await import('./docker.js')).openRegistrySource(rest, opts);
    case 'oci':
      return (await import('./oci-layout.js')).openLayoutSource(rest);
    case 'oci-archive':
      return (await import('./oci-archive.js')).openOciArchiveSource(rest, opts);
    case 'docker-archive':
      return (await import('./docker-archive.js')).openDockerArchiveSource(rest, opts);
    case 'docker-daemon':
      return (await import('./docker-daemon.js')).openDockerDaemonSource(rest, opts);
    case 's3':
      return (await import('./bucket.js')).openBucketSource(rest, opts);
    case 'oci-http':
      return (await import('./oci-http.js')).openHttpLayoutSource(rest, opts);
  }
}

/** Opens the place a transport reference names, for writing. */
export async function openDestination(
  ref: string,
  opts: TransportOptions & BucketOptions = {},
): Promise<ImageDestination> {
  const { transport, rest } = parseTransportReference(ref);
  switch (transport) {
    case 'docker':
      return (await import('./docker.js')).openRegistryDestination(rest, opts);
    case 'oci':
      return (await import('./oci-layout.js')).openLayoutDestination(rest);
    case 'oci-archive':
      return (await import('./oci-archive.js')).openOciArchiveDestination(rest, opts);
    case 'docker-archive':
      return (await import('./docker-archive.js')).openDockerArchiveDestination(rest, opts);
    case 'docker-daemon':
      return (await import('./docker-daemon.js')).openDockerDaemonDestination(rest, opts);
    case 's3':
      return (await import('./bucket.js')).openBucketDestination(rest, opts);
    case 'oci-http':
      throw new Error(
        `${ref}: oci-http: is read-only (a static web server takes no uploads); copy to oci:DIR and publish the folder`,
      );
  }
}
