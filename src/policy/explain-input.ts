import { isDigest } from '../oci/digest.js';
import { isRepositoryName, isTag } from '../oci/name.js';
import { ACTIONS, isAction, ROBOT_PREFIX, type Action, type Principal, type Target } from './types.js';

// What `sluice policy explain` and the web UI's explainer are asked: a target, actions and a principal, read
// from text a person typed. Pure: the CLI and the API each turn a problem into their own error.

/** As robots.ts checks robot names when it creates one. */
const ROBOT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** Splits `repo[:tag][@digest]` as the registry names it (no registry host is added). */
export function parseTarget(text: string): Target {
  const t: Target = {};
  let rest = text;
  const at = rest.indexOf('@');
  if (at >= 0) {
    t.digest = rest.slice(at + 1);
    if (!isDigest(t.digest)) throw new Error(`"${t.digest}" is not a digest (sha256:<64 hex digits>)`);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    const tag = rest.slice(colon + 1);
    if (!isTag(tag))
      throw new Error(`"${tag}" is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
    // The registry sees one reference per request: a digest, or a tag.
    if (t.digest !== undefined) throw new Error(`give a tag or a digest, not both: ${text}`);
    t.tag = tag;
    rest = rest.slice(0, colon);
  }
  if (!isRepositoryName(rest))
    throw new Error(`"${rest}" is not a repository name (lower case, digits, separators . _ - and /)`);
  t.repository = rest;
  return t;
}

/** The actions `--action` names (`*` for all), or a one-line problem. */
export function parseActions(text: string): Action[] | string {
  const items = text.split(',').map((a) => a.trim());
  if (items.includes('*')) return [...ACTIONS];
  const empty = items.some((a) => a === '');
  if (empty) return `--action "${text}" has an empty entry (valid: ${ACTIONS.join(', ')}; * for all)`;
  const bad = items.filter((a) => !isAction(a));
  if (bad.length)
    return `--action: unknown action${bad.length > 1 ? 's' : ''} ${bad.map((b) => `'${b}'`).join(', ')} (valid: ${ACTIONS.join(', ')}; * for all)`;
  return [...new Set(items as Action[])];
}

/** The principal `--user`, `--robot` or `--anonymous` names, or a one-line problem. */
export function parsePrincipal(opts: {
  user?: string;
  robot?: string;
  anonymous?: boolean;
  group?: string[];
}): Principal | string {
  const given = [
    opts.user !== undefined && '--user',
    opts.robot !== undefined && '--robot',
    opts.anonymous && '--anonymous',
  ].filter(Boolean);
  if (given.length > 1) return `give one of --user, --robot, --anonymous (got ${given.join(' and ')})`;
  if (opts.group?.length && given.length === 0)
    return '--group needs --user or --robot (a group has members, not anonymous callers)';
  if (opts.group?.length && opts.anonymous) return '--group needs --user or --robot; anonymous callers are in no group';
  let robot = opts.robot;
  if (opts.user !== undefined) {
    // The registry reads a Basic user name `robot$NAME` as that robot, so explain does too.
    if (opts.user.startsWith(ROBOT_PREFIX)) robot = opts.user.slice(ROBOT_PREFIX.length);
    else if (!opts.user || /[:\s]/.test(opts.user))
      return `--user "${opts.user}" is not a user name (not empty, no colon or spaces)`;
    else return { kind: 'user', name: opts.user };
  }
  if (robot !== undefined) {
    const name = robot.startsWith(ROBOT_PREFIX) ? robot.slice(ROBOT_PREFIX.length) : robot;
    if (!ROBOT_NAME.test(name)) return `--robot "${robot}" is not a robot name (lower-case letters, digits and . _ -)`;
    return { kind: 'robot', name };
  }
  return { kind: 'anonymous' };
}
