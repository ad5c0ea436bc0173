import { parseTransportReference, type ImageDestination, type ImageSource } from './transport.js';
import type { TransportOptions } from './options.js';
import { openRegistryDestination, openRegistrySource } from './docker.js';
import { openLayoutDestination, openLayoutSource } from './oci-layout.js';
import { openOciArchiveDestination, openOciArchiveSource } from './oci-archive.js';

export type { TransportOptions } from './options.js';

/** Opens the place a transport reference (`docker://…`, `oci:…`, …) names, for reading. */
export async function openSource(ref: string, opts: TransportOptions = {}): Promise<ImageSource> {
  const { transport, rest } = parseTransportReference(ref);
  switch (transport) {
    case 'docker':
      return openRegistrySource(rest, opts);
    case 'oci':
      return openLayoutSource(rest);
    case 'oci-archive':
      return openOciArchiveSource(rest, opts);
    // docker-archive: and docker-daemon: are added by their own modules (docker-archive.ts, docker-daemon.ts).
    case 'docker-archive':
    case 'docker-daemon':
      throw new Error(`the ${transport}: transport is not available in this build`);
  }
}

/** Opens the place a transport reference names, for writing. */
export async function openDestination(ref: string, opts: TransportOptions = {}): Promise<ImageDestination> {
  const { transport, rest } = parseTransportReference(ref);
  switch (transport) {
    case 'docker':
      return openRegistryDestination(rest, opts);
    case 'oci':
      return openLayoutDestination(rest);
    case 'oci-archive':
      return openOciArchiveDestination(rest, opts);
    // docker-archive: and docker-daemon: are added by their own modules (docker-archive.ts, docker-daemon.ts).
    case 'docker-archive':
    case 'docker-daemon':
      throw new Error(`the ${transport}: transport is not available in this build`);
  }
}
