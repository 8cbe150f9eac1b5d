-- Which audit replica runs the SIEM exporters: one at a time, or each sink
-- would receive every record once per replica. The holder renews the lease;
-- another replica takes over when it lapses.
CREATE TABLE audit.export_lease (
  id int PRIMARY KEY CHECK (id = 1),
  holder text NOT NULL,
  expires_at timestamptz NOT NULL
);
