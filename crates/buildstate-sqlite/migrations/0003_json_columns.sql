-- 0003 json columns: the JSON columns take the names PostgreSQL gives them, so that
-- both SQL backends run the same statements (`buildstate_store::sql::text`).
--
-- Append-only: once released, this file never changes. Change the schema with a new file.

ALTER TABLE builds RENAME COLUMN catalog_json TO catalog;
ALTER TABLE builds RENAME COLUMN metadata_json TO metadata;
ALTER TABLE failures RENAME COLUMN details_json TO details;
