-- How far back retention may have deleted each chain's content. Verify
-- accepts a record without its content only when it is older than this;
-- content missing from a newer record was deleted by someone else. A purge
-- moves the mark before it deletes (it only ever grows), so a purge that
-- stops midway never leaves content gone that the mark does not explain.
CREATE TABLE audit.content_purges (
  chain_id text PRIMARY KEY,
  before timestamptz NOT NULL,
  run_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
