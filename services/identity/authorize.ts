import { denied } from "../kit/errors.js";
import type { PrincipalKind } from "./store.js";

/** The role that administers an org. */
export const adminRole = "org-admin";

/** A principal acting through a token. */
export interface Actor {
  id: string;
  orgId: string;
  kind: PrincipalKind;
  roles: readonly string[];
  scopes: readonly string[];
}

/** What an identity change is done to. */
export interface Target {
  id: string;
  orgId: string;
  ownerId: string | null;
}

export function isAdmin(actor: Actor): boolean {
  return actor.roles.includes(adminRole);
}

/** Management calls need a token with the `admin` scope, whatever the principal's roles. */
export function requireAdminScope(actor: Actor): void {
  if (!actor.scopes.includes("admin")) {
    throw denied("this token lacks the admin scope; create one with --scope admin");
  }
}

/**
 * Who may manage a principal's tokens: the principal itself, the user who
 * owns an agent, and the org's admins. Principals of other orgs are not
 * visible at all, so the caller learns nothing about them (`invisible`).
 */
export function access(actor: Actor, target: Target): "allowed" | "denied" | "invisible" {
  if (target.orgId !== actor.orgId) return "invisible";
  if (target.id === actor.id || target.ownerId === actor.id || isAdmin(actor)) return "allowed";
  return "denied";
}
