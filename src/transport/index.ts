import { parseTransportReference, type ImageDestination, type ImageSource } from './transport.js';
import type { TransportOptions } from './options.js';
import { openRegistryDestination, openRegistrySource } from './docker.js';
import { openLayoutDestination, openLayoutSource } from './oci-layout.js';
import { openOciArchiveDestination, openOciArchiveSource } from './oci-archive.js';
import { openDockerArchiveDestination, openDockerArchiveSource } from './docker-archive.js';
import { openDockerDaemonDestination, openDockerDaemonSource } from './docker-daemon.js';
import { openBucketDestination, openBucketSource, type BucketOptions } from './bucket.js';
import { openHttpLayoutSource } from './oci-http.js';

export type { TransportOptions } from './options.js';
export type { BucketOptions } from './bucket.js';

/** Opens the place a transport reference (`docker://…`, `oci:…`, …) names, for reading. */
export async function openSource(ref: string, opts: TransportOptions & BucketOptions = {}): Promise<ImageSource> {
  const { transport, rest } = parseTransportReference(ref);
  switch (transport) {
    case 'docker':
      return openRegistrySource(rest, opts);
    case 'oci':
      return openLayoutSource(rest);
    case 'oci-archive':
      return openOciArchiveSource(rest, opts);
    case 'docker-archive':
      return openDockerArchiveSource(rest, opts);
    case 'docker-daemon':
      return openDockerDaemonSource(rest, opts);
    case 's3':
      return openBucketSource(rest, opts);
    case 'oci-http':
      return openHttpLayoutSource(rest, opts);
  }
}

/** Opens the place a transport reference names, for writing. */
export async function openDestination(ref: string, opts: TransportOptions & BucketOptions = {}): Promise<ImageDestination> {
  const { transport, rest } = parseTransportReference(ref);
  switch (transport) {
    case 'docker':
      return openRegistryDestination(rest, opts);
    case 'oci':
      return openLayoutDestination(rest);
    case 'oci-archive':
      return openOciArchiveDestination(rest, opts);
    case 'docker-archive':
      return openDockerArchiveDestination(rest, opts);
    case 'docker-daemon':
      return openDockerDaemonDestination(rest, opts);
    case 's3':
      return openBucketDestination(rest, opts);
    case 'oci-http':
      throw new Error(`${ref}: oci-http: is read-only (a static web server takes no uploads); copy to oci:DIR and publish the folder`);
  }
}
