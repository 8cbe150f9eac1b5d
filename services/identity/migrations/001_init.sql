-- Orgs are the tenancy boundary; every other row names its org.
CREATE TABLE identity.orgs (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity.principals (
  id text PRIMARY KEY,
  org_id text NOT NULL REFERENCES identity.orgs(id),
  kind text NOT NULL CHECK (kind IN ('user', 'agent', 'service_account')),
  display_name text NOT NULL,
  email text,
  -- For users from the IdP: issuer and subject identify them across sign-ins.
  oidc_issuer text,
  oidc_subject text,
  owner_id text REFERENCES identity.principals(id),
  groups text[] NOT NULL DEFAULT '{}',
  roles text[] NOT NULL DEFAULT '{}',
  workspace text,
  repositories text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (oidc_issuer, oidc_subject)
);
CREATE UNIQUE INDEX principals_user_email ON identity.principals (org_id, lower(email)) WHERE kind = 'user';
CREATE INDEX principals_org ON identity.principals (org_id);

-- Only SHA-256 of a token's secret part is kept; the id is public (it is in the token's prefix).
CREATE TABLE identity.tokens (
  id text PRIMARY KEY,
  principal_id text NOT NULL REFERENCES identity.principals(id),
  org_id text NOT NULL REFERENCES identity.orgs(id),
  kind text NOT NULL CHECK (kind IN ('api', 'session')),
  name text NOT NULL,
  secret_sha256 bytea NOT NULL,
  scopes text[] NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX tokens_principal ON identity.tokens (principal_id, created_at DESC, id DESC);

-- Identity changes waiting for the audit log (see services/kit/audit-events.ts).
CREATE TABLE identity.audit_outbox (
  id uuid PRIMARY KEY,
  kind text NOT NULL,
  action text NOT NULL,
  org_id text NOT NULL,
  actor text NOT NULL,
  subject text NOT NULL,
  attributes jsonb NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_outbox_time ON identity.audit_outbox (occurred_at);
