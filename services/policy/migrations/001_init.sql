-- One row per rule, as its canonical bundle line (see services/policy/rules.ts).
CREATE TABLE policy.rules (
  org_id text NOT NULL,
  rule text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, rule)
);

-- Bumped by every change; replicas and callers' decision caches key on it.
CREATE TABLE policy.versions (
  org_id text PRIMARY KEY,
  version bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Policy changes and refused attempts waiting for the audit log (see services/kit/audit-events.ts).
CREATE TABLE policy.audit_outbox (
  id uuid PRIMARY KEY,
  kind text NOT NULL,
  action text NOT NULL,
  org_id text NOT NULL,
  actor text NOT NULL,
  subject text NOT NULL,
  attributes jsonb NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_outbox_time ON policy.audit_outbox (occurred_at);
