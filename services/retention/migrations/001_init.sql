-- Retention rules an org set for itself; classes without a row follow the
-- configured defaults. days NULL keeps forever.
CREATE TABLE retention.rules (
  org_id text NOT NULL,
  data_class text NOT NULL CHECK (data_class IN ('content', 'metadata', 'receipts')),
  days integer CHECK (days IS NULL OR days > 0),
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, data_class)
);

-- Legal holds. A released hold stays, with who released it and why.
CREATE TABLE retention.holds (
  id text PRIMARY KEY,
  org_id text NOT NULL,
  principal_ids text[] NOT NULL,
  since timestamptz,
  until timestamptz,
  case_id text NOT NULL,
  reason text NOT NULL,
  placed_by text NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT now(),
  released_by text,
  released_at timestamptz,
  release_reason text
);
CREATE INDEX holds_org ON retention.holds (org_id, placed_at DESC, id DESC);

-- Runs and their reports. A run left 'running' by a process that died is
-- marked 'interrupted' by the next run, which holds the run lock and so
-- knows no other run is alive.
CREATE TABLE retention.runs (
  id text PRIMARY KEY,
  dry_run boolean NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
  trigger text NOT NULL,
  requested_by text NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz,
  report jsonb,
  error text NOT NULL DEFAULT ''
);
CREATE INDEX runs_started ON retention.runs (started_at DESC, id DESC);

-- Receipts, hold and rule changes waiting for the audit log (see services/kit/audit-events.ts).
CREATE TABLE retention.audit_outbox (
  id uuid PRIMARY KEY,
  kind text NOT NULL,
  action text NOT NULL,
  org_id text NOT NULL,
  actor text NOT NULL,
  subject text NOT NULL,
  attributes jsonb NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_outbox_time ON retention.audit_outbox (occurred_at);
