-- Stretches of a chain that retention deleted. Verify and offline verifiers
-- pass over such a stretch only when its range covers it exactly and the
-- record after it names `last_hash`, the hash of the last record deleted;
-- `run_id` names the retention run whose receipt accounts for it. A range is
-- written in the same transaction as the deletion it describes, and ranges
-- never overlap, so the key on their first position also keeps a rerun from
-- writing one twice.
CREATE TABLE audit.purged_ranges (
  chain_id text NOT NULL,
  from_seq bigint NOT NULL,
  to_seq bigint NOT NULL CHECK (to_seq >= from_seq),
  last_hash text NOT NULL,
  run_id text NOT NULL,
  purged_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chain_id, from_seq)
);
