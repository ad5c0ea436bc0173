/** The AWS SDK's S3 client module. */
export type S3Sdk = typeof import('@aws-sdk/client-s3');

let load: Promise<S3Sdk> | undefined;

/**
 * Loads the S3 SDK on first use: it takes about a second, which only a process that talks to a bucket
 * should pay. The pinned version supports Node 20; its once-a-process notice that versions published
 * after January 2027 will need Node 22 says nothing about the installed one, so it is silenced unless the
 * environment asks otherwise.
 */
export function loadS3Sdk(): Promise<S3Sdk> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  load ??= import('@aws-sdk/client-s3');
  return load;
}
