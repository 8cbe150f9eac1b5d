-- Nearly every record is an llm.request or an llm.response, about half and
-- half: a filter on either finds a page of them at once in the order of
-- records_org_time. The kind index is for the other kinds (audit reads,
-- identity, policy and retention events), which are few and would otherwise
-- be looked for through every LLM record. Leaving LLM records out of it
-- spares each of them an index insert while its chain is locked.
DROP INDEX audit.records_org_kind;
CREATE INDEX records_org_kind ON audit.records (org_id, kind, time DESC, id DESC)
  WHERE kind NOT IN ('llm.request', 'llm.response');
