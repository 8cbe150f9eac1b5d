import { invalid } from "../kit/errors.js";
import { isId } from "../kit/ids.js";

/** Input checks for identity's RPCs; each failure names the field and what is expected. */

const patterns = {
  orgName: /^[a-z0-9][a-z0-9-]{1,62}$/,
  email: /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{1,63}$/,
  role: /^[a-z][a-z0-9-]{0,62}$/,
  workspace: /^[A-Za-z0-9._-]{1,100}$/,
  repository: /^[A-Za-z0-9._\-/*]{1,200}$/,
};

export function orgName(value: string): string {
  if (!patterns.orgName.test(value)) {
    throw invalid(
      "org name: 2-63 characters of lowercase letters, digits and dashes, starting with a letter or digit",
    );
  }
  return value;
}

export function email(value: string): string {
  if (!patterns.email.test(value))
    throw invalid("email: expected an address like name@example.com");
  return value.toLowerCase();
}

export function emailOrUndefined(value: string): string | undefined {
  return patterns.email.test(value) ? value.toLowerCase() : undefined;
}

export function displayName(value: string, field = "display_name"): string {
  const trimmed = value.trim();
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (trimmed.length < 1 || trimmed.length > 200 || /[\u0000-\u001f]/.test(trimmed)) {
    throw invalid(`${field}: 1-200 printable characters`);
  }
  return trimmed;
}

export function tokenName(value: string): string {
  return value.trim() === "" ? "default" : displayName(value, "name");
}

export function roles(values: readonly string[]): string[] {
  if (values.length > 20) throw invalid("roles: at most 20");
  for (const r of values)
    if (!patterns.role.test(r))
      throw invalid(`role ${JSON.stringify(r.slice(0, 80))}: lowercase letters, digits and dashes`);
  return [...new Set(values)].sort();
}

export function workspace(value: string): string | null {
  if (value === "") return null;
  if (!patterns.workspace.test(value))
    throw invalid("workspace: 1-100 letters, digits, dots, dashes or underscores");
  return value;
}

export function repositories(values: readonly string[]): string[] {
  if (values.length > 100) throw invalid("repositories: at most 100 patterns");
  for (const r of values) {
    if (!patterns.repository.test(r))
      throw invalid(
        `repository ${JSON.stringify(r.slice(0, 80))}: expected a pattern like github.com/acme/*`,
      );
  }
  return [...new Set(values)].sort();
}

/** A principal id as issued by Airlock; anything else cannot exist, so it is refused early. */
export function principalId(value: string, field = "principal_id"): string {
  if (!isId(value)) throw invalid(`${field}: expected an id like usr_… or agt_…`);
  return value;
}

export function tokenId(value: string): string {
  if (!/^[0-9A-Za-z]{16}$/.test(value))
    throw invalid("token_id: expected the 16 characters after alk_");
  return value;
}
