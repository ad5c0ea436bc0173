// Generated from the program's own help (commander, every command loaded): `sluice --help` prints it without
// loading them. test/cli/startup.test.ts fails when it differs; paste the text it prints here.

/** What `sluice --help` prints when stdout is not a terminal. */
export const TOP_HELP = `Usage: sluice [options] [command]

Container-image registry and image mover

Options:
  -V, --version                          output the version number
  -h, --help                             display help for command

Commands:
  serve [options]                        run the registry (filesystem storage under ./data on 127.0.0.1:5000 by default)
  copy [options] <source> <destination>  copy an image between transports: docker://, oci:, oci-archive:, docker-archive:, docker-daemon:, s3: (an OCI layout in a bucket), oci-http: (read-only)
  inspect [options] <reference>          show an image: digest, media type, platforms, config, layers
  tags [options] <reference>             list the tags of a repository, or the names (ref.name) in an OCI layout or archive
  sync [options] [file]                  run mirror jobs once (the config's mirrors:, or skopeo sync's YAML with --src yaml FILE --dest REF); exits 1 when a job failed
  key                                    cosign-compatible signing keys
  sign [options] <image>                 sign an image as cosign does: a simple-signing signature under sha256-<hex>.sig (or, with --bundle, cosign 3's sigstore bundle referrer)
  verify [options] <image>               check an image’s signatures (.sig tag, referrers API, sha256-<hex> tag) against keys and an identity rule, or a containers-policy.json; exit 1 when not verified
  robot                                  robot accounts: long random tokens, stored only as hashes
  policy                                 inspect the access policy of a config
  passthrough [options]                  copy images from the host Docker daemon into this (nested) one, filtered by mode, registry allowlist and image patterns; reads DIND_HOST_PASSTHROUGH, DIND_HOST_PASSTHROUGH_REGISTRIES, DIND_HOST_PASSTHROUGH_IMAGES and DIND_HOST_DOCKER_SOCK as the box dind image does
  gc [options] [config]                  collect garbage in the storage a config names: unused blobs, and with -m untagged manifests (online: two passes apart by the grace)
  du [options] [config] [repository]     bytes per repository: what only it uses (what deleting it frees) and what it shares; per tag with REPOSITORY or --tags
  fsck [options] [config]                check the storage: links valid, tagged manifests and their blobs present and matching their digests
  events                                 the events journal and its deliveries (notifications:)
  help [command]                         display help for command
`;
