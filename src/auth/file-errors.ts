import { dirname } from 'node:path';

/**
 * An error about a file named in the config, naming the config key that points at it, so `sluice serve`
 * can print one line the operator can act on instead of a bare ENOENT or EISDIR.
 */
export function fileError(key: string, path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new Error(`${key}: ${path} does not exist`);
    case 'EISDIR':
      return new Error(`${key}: ${path} is a directory`);
    case 'ENOTDIR':
      return new Error(`${key}: ${path}: a part of the path is not a folder`);
    case 'EACCES':
    case 'EPERM':
      return new Error(`${key}: ${path} cannot be read or written (permission denied)`);
    default:
      return new Error(`${key}: ${path}: ${(e as Error).message}`);
  }
}

/** The error for a file that was to be created in a folder that is missing. */
export function missingFolderError(key: string, path: string): Error {
  return new Error(`${key}: ${path} cannot be created: the folder ${dirname(path)} does not exist`);
}
