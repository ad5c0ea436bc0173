/**
 * Thrown when a token is not acceptable; the message is safe to show (never the token). Apart from tokens.ts
 * so that the UI's session routes can recognise it without loading jose when no access control is configured.
 */
export class TokenError extends Error {}
