import { createRequire } from 'node:module';
import type * as SigstoreBundle from '@sigstore/bundle';
import type * as SigstoreCore from '@sigstore/core';
import type * as SigstoreVerify from '@sigstore/verify';
import type * as ProtobufSpecs from '@sigstore/protobuf-specs';

// sigstore-js is about 60 files and several MiB once loaded; only keyless signatures and trusted roots need
// it. It is required on first use, so a copy, a sync or a registry whose rules name no keyless identity never
// loads it. (Loading is synchronous, as the checks that call these are; the packages are CommonJS.)
const require = createRequire(import.meta.url);
let bundle: typeof SigstoreBundle | undefined;
let core: typeof SigstoreCore | undefined;
let verify: typeof SigstoreVerify | undefined;
let specs: typeof ProtobufSpecs | undefined;

/** @sigstore/bundle: reading cosign's bundles. */
export const sigstoreBundle = (): typeof SigstoreBundle =>
  (bundle ??= require('@sigstore/bundle') as typeof SigstoreBundle);
/** @sigstore/core: X.509 parsing. */
export const sigstoreCore = (): typeof SigstoreCore => (core ??= require('@sigstore/core') as typeof SigstoreCore);
/** @sigstore/verify: the verifier and trust material. */
export const sigstoreVerify = (): typeof SigstoreVerify =>
  (verify ??= require('@sigstore/verify') as typeof SigstoreVerify);
/** @sigstore/protobuf-specs: the trusted root's schema. */
export const protobufSpecs = (): typeof ProtobufSpecs =>
  (specs ??= require('@sigstore/protobuf-specs') as typeof ProtobufSpecs);
