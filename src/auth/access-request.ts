// What a request asks of access control. The registry builds it per route; auth/ decides on it.
/** What a request wants to do, as the access-control layer sees it. */
export interface AccessRequest {
  /** Repository name, or undefined for registry-wide requests (catalog, `/v2/`). */
  repository?: string;
  /** The actions the request needs, e.g. ['pull'] or ['push', 'pull'] for a cross-repository mount. */
  actions: string[];
  /**
   * The repository as the client named it, when it differs from `repository` (a mirror request for
   * `library/nginx` served from the cache repository `docker.io/library/nginx`): a bearer token is
   * issued for the client's name, so its grants are looked up under it; the policy decides on `repository`.
   */
  clientName?: string;
  /** Tag or digest the request concerns, for the audit log. */
  reference?: string;
  /** Extra repository and actions a request needs, e.g. the source of a mount. */
  also?: { repository: string; actions: string[] }[];
}
