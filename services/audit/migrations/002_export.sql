-- SIEM export: how far each sink has got. One row per sink; `cursor` maps
-- each chain id to the seq of the last record the sink acknowledged. It is
-- written only after the sink acknowledged, so a restart resumes right after
-- what was delivered.
CREATE TABLE audit.export_cursors (
  sink text PRIMARY KEY,
  cursor jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
